"""Which connection carries which token (B1). Pure.

Tokens stay on the connection they are on (a move would cost an unsubscribe, a subscribe and a
fresh snapshot); new tokens fill the existing connections up to the cap, then open new ones.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_shards(current: Sequence[set[str]], wanted: set[str], cap: int) -> list[set[str]]:
    """The token set of each existing connection (same order), then of each new one.

    An existing connection may come back empty: the caller closes it.
    """
    if cap < 1:
        raise ValueError("cap must be >= 1")
    out = [set(tokens) & wanted for tokens in current]
    placed = set().union(*out) if out else set()
    missing = sorted(wanted - placed)  # sorted: the same wanted set gives the same plan
    for tokens in out:
        while missing and len(tokens) < cap:
            tokens.add(missing.pop(0))
    while missing:
        out.append(set(missing[:cap]))
        missing = missing[cap:]
    return out
