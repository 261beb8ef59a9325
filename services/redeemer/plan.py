"""Which flagged positions to redeem now, and when to try a failed one again (pure).

``pf:redeemable`` (the orchestrator's) maps each token held when its market resolved to what a
redeem needs. A redeem takes the wallet's whole balance of the market's outcomes (v1: the collateral
adapter's ``redeemPositions``; v2: the Router's ``redeem`` of every outcome held; docs/venue.md C2,
V4, Z3), so the flagged tokens of one condition are redeemed together, once, and only when none of
them is still in use:

* a session still holds the token (``starting``, ``running``, ``exiting``): the orchestrator asked
  it to exit at the resolution, and its last fills and closed report come first;
* the token has trades still pending (``pending_trades``): shares bought are in the wallet only once
  their trades settle (docs/venue.md T2), so a redeem now would leave them behind -- unless
  ``settle_wait`` has passed since the resolution (a trade never reported final must not block the
  payout forever).

A redeem that failed (refused, reverted, no outcome in time) is tried again after a backoff; one
whose outcome was unknown is safe to send again: a second redeem pays only what is left (nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.backoff import Backoff

SESSION_STATES = frozenset({"starting", "running", "exiting"})


@dataclass(frozen=True)
class Flagged:
    """One ``pf:redeemable`` entry."""

    token_id: str
    condition_id: str
    won: bool
    market_version: str
    neg_risk: bool
    resolved_at: int  # ms

    @classmethod
    def parse(cls, token_id: str, raw: str) -> Flagged | None:
        """The entry, or None when it cannot be read (logged and left for a person by the caller)."""
        try:
            d = json.loads(raw)
            return cls(token_id, str(d["condition_id"]), bool(d["won"]), str(d.get("market_version") or "v1"),
                       bool(d.get("neg_risk", False)), int(d.get("resolved_at") or 0))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Redeem:
    """One redeem call: a condition and the flagged tokens it pays."""

    condition_id: str
    market_version: str
    tokens: tuple[Flagged, ...]


def waiting_on(f: Flagged, token: Mapping[str, str], now_ms: int, settle_wait_ms: int) -> str:
    """Why ``f`` cannot be redeemed yet ("" = it can), from its ``pf:token`` hash."""
    state = token.get("state", "")
    if state in SESSION_STATES:
        return f"its session is still {state}"
    pending = int(float(token.get("pending_trades") or 0))
    if pending and now_ms - f.resolved_at < settle_wait_ms:
        return f"{pending} trade(s) not settled yet"
    return ""


def plan(flagged: list[Flagged], tokens: Mapping[str, Mapping[str, str]], now_ms: int,
         settle_wait_ms: int) -> tuple[list[Redeem], dict[str, str]]:
    """(the redeems due now, one per condition whose flagged tokens are all free; why each other
    token waits)."""
    by_condition: dict[str, list[Flagged]] = {}
    for f in sorted(flagged, key=lambda x: (x.condition_id, x.token_id)):
        by_condition.setdefault(f.condition_id, []).append(f)
    due: list[Redeem] = []
    waiting: dict[str, str] = {}
    for cid, group in by_condition.items():
        why = {f.token_id: w for f in group if (w := waiting_on(f, tokens.get(f.token_id, {}), now_ms,
                                                               settle_wait_ms))}
        if why:
            waiting.update({f.token_id: why.get(f.token_id, "another outcome of its market waits") for f in group})
        else:
            due.append(Redeem(cid, group[0].market_version, tuple(group)))
    return due, waiting


@dataclass
class Retries:
    """Per condition: how many redeems failed in a row and when the next may go (loop seconds)."""

    backoff: Backoff
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    def due(self, condition_id: str, now: float) -> bool:
        return now >= self.failures.get(condition_id, (0, 0.0))[1]

    def failed(self, condition_id: str, now: float) -> tuple[int, float]:
        """Count a failure; (failures in a row, seconds until the next try)."""
        attempts = self.failures.get(condition_id, (0, 0.0))[0] + 1
        delay = self.backoff.delay(attempts)
        self.failures[condition_id] = (attempts, now + delay)
        return attempts, delay

    def done(self, condition_id: str) -> None:
        self.failures.pop(condition_id, None)
