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

A redeem that failed (refused, reverted, no outcome in time) is tried again after a backoff kept in
its ``pf:redeem:status`` entry (shared/redemptions.py), so a restart keeps it; an operator's retry
makes it due at once. One whose outcome was unknown is not simply sent again: if the wallet holds
none on chain of what it held before that send, the send landed (:func:`landed`), and sending
again would only pay nothing for a second transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from shared.backoff import Backoff
from shared.redemptions import RETRYABLE, RedeemStatus

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


DUST = 1e-6  # shares: less is none


def may_try(st: RedeemStatus | None, retry_asked_at: int, now_ms: int) -> bool:
    """Whether a market :func:`plan` found due may be redeemed now, from its status: not once it is
    redeemed (the orchestrator books it), and a retryable one when its backoff has passed or an
    operator asked after its last try."""
    if st is None or st.state not in RETRYABLE:
        return st is None or st.state != "redeemed"
    return now_ms >= st.next_at or retry_asked_at > st.tried_at


def outcome_unknown(st: RedeemStatus | None) -> bool:
    """A redeem was sent and nobody knows whether it landed (no outcome in time, or the process that
    sent it stopped before the outcome)."""
    return st is not None and st.state in ("sent", "unknown")


def landed(st: RedeemStatus, balances: Mapping[str, float]) -> bool:
    """After a redeem of unknown outcome: the wallet held some of the market before that send and
    holds none of it now, so the send went through."""
    held = [t.shares for t in st.tokens if t.shares is not None]
    return (outcome_unknown(st) and any(s > DUST for s in held)
            and all(balances.get(t.token_id, 0.0) <= DUST for t in st.tokens))


def after_failure(st: RedeemStatus, state: str, reason: str, now_ms: int, backoff: Backoff) -> float:
    """Count a try that did not finish: the state it left, why, and when the next may go; the delay (s)."""
    st.attempts += 1
    delay = backoff.delay(st.attempts)
    st.state, st.reason, st.next_at, st.updated_at = state, reason, now_ms + int(delay * 1000), now_ms
    return delay
