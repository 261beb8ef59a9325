"""What to do with a signal, as pure functions of what the orchestrator knows (no I/O).

A verdict is an action and the reason a person would want to read later; every verdict becomes
an audit event, so nothing is dropped silently (C11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.config import RiskSection

ACTIVE_STATES = frozenset({"queued", "starting", "running", "exiting"})

Action = Literal["queue", "reject", "ignore", "exit", "dequeue"]


@dataclass(frozen=True)
class TokenView:
    token_id: str
    state: str = ""  # "" = never seen
    owner: str = ""
    epoch: int = 0


@dataclass(frozen=True)
class BuyContext:
    blacklist_reason: str | None
    handled: bool
    cooling_down: bool
    halt: str  # "", "reduce_only" or "halt"
    exposure_total: float
    notional: float  # what this token's session may put at risk


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str


def decide_buy(token: TokenView, ctx: BuyContext, risk: RiskSection) -> Verdict:
    if token.state in ACTIVE_STATES:
        return Verdict("ignore", f"token already {token.state}")
    if ctx.halt:
        return Verdict("reject", f"kill switch is {ctx.halt}: no new sessions")
    if ctx.blacklist_reason:
        return Verdict("reject", f"blacklisted: {ctx.blacklist_reason}")
    if ctx.handled:
        return Verdict("ignore", "already handled (reset with `polyfleet handled reset`)")
    if ctx.cooling_down:
        return Verdict("reject", "cooling down after its last session")
    if ctx.notional > risk.max_notional_per_token:
        return Verdict("reject", f"notional {ctx.notional:.2f} over risk.max_notional_per_token "
                                 f"{risk.max_notional_per_token:.2f}")
    if ctx.exposure_total + ctx.notional > risk.max_notional_total:
        return Verdict("reject", f"exposure {ctx.exposure_total:.2f} + {ctx.notional:.2f} over "
                                 f"risk.max_notional_total {risk.max_notional_total:.2f}")
    return Verdict("queue", "admitted")


def decide_sell(token: TokenView) -> Verdict:
    if token.state in ("starting", "running"):
        return Verdict("exit", "followed wallet sold")
    if token.state == "queued":
        return Verdict("dequeue", "followed wallet sold before the session started")
    if token.state == "exiting":
        return Verdict("ignore", "already exiting")
    return Verdict("ignore", f"no session to exit (state {token.state or 'unknown'})")


def blacklist_reason(keys_to_check: list[str], config_keys: tuple[str, ...],
                     runtime: dict[str, tuple[str, int]], now_ms: int) -> str | None:
    """The reason the first matching key is blacklisted, or None.

    ``runtime`` maps key -> (reason, expires_at ms, 0 = never); expired entries do not count.
    Keys are compared case-insensitively (slugs and hex ids arrive in either case).
    """
    wanted = [k.lower() for k in keys_to_check if k]
    configured = {k.lower() for k in config_keys}
    for key in wanted:
        if key in configured:
            return f"{key} is in risk.blacklist_token_keys"
    lowered = {k.lower(): v for k, v in runtime.items()}
    for key in wanted:
        entry = lowered.get(key)
        if entry and (entry[1] == 0 or entry[1] > now_ms):
            return f"{key}: {entry[0]}"
    return None
