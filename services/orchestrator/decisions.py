"""What to do with a signal, as pure functions of what the orchestrator knows (no I/O).

A verdict is an action and the reason a person would want to read later; every verdict becomes
an audit event, so nothing is dropped silently (C11).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from shared.config import RiskSection
from shared.fleet import EXITABLE_STATES, LIVE_STATES
from shared.messages import Signal
from shared.venue.ids import outcome

SELL_EXIT_REASON = "followed wallet sold"  # a SELL's exit reason; a close that carries it sold out (cooldown rule)

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
    ignored_reason: str | None = None  # on the ignored list (C4), with its reason
    daily_realized: float = 0.0  # today's realised PnL (UTC day), negative = loss


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str


def decide_buy(token: TokenView, ctx: BuyContext, risk: RiskSection) -> Verdict:
    """Admission of a BUY, before the notional reservation (which the risk book does atomically)."""
    if token.state in LIVE_STATES:
        return Verdict("ignore", f"token already {token.state}")
    if ctx.halt:
        return Verdict("reject", f"kill switch is {ctx.halt}: no new sessions")
    if ctx.blacklist_reason:
        return Verdict("reject", f"blacklisted: {ctx.blacklist_reason}")
    if ctx.handled:
        return Verdict("ignore", "already handled (reset with `polyfleet handled reset`)")
    if ctx.ignored_reason:
        return Verdict("ignore", f"ignored: {ctx.ignored_reason}")
    if ctx.cooling_down:
        return Verdict("reject", "cooling down after its last session")
    if -ctx.daily_realized >= risk.max_daily_loss:
        return Verdict("reject", f"daily loss {-ctx.daily_realized:.2f} reached risk.max_daily_loss "
                                 f"{risk.max_daily_loss:.2f}")
    return Verdict("queue", "admitted")


def reservation_refused(refused_by: str, amount: float, committed: float, risk: RiskSection) -> str:
    """The reason a person reads when the risk book refused a reservation."""
    if refused_by == "per_token":
        return f"notional {amount:.2f} over risk.max_notional_per_token {risk.max_notional_per_token:.2f}"
    return (f"committed {committed:.2f} + {amount:.2f} over risk.max_notional_total "
            f"{risk.max_notional_total:.2f}")


def decide_sell(token: TokenView) -> Verdict:
    if token.state in EXITABLE_STATES:
        return Verdict("exit", SELL_EXIT_REASON)
    if token.state == "queued":
        return Verdict("dequeue", "followed wallet sold before the session started")
    if token.state == "exiting":
        return Verdict("ignore", "already exiting")
    return Verdict("ignore", f"no session to exit (state {token.state or 'unknown'})")


KEYWORD_PREFIX = "kw:"  # blacklist entry matched as a substring of the title or slug
REGEX_PREFIX = "re:"  # blacklist entry matched as a regular expression against title or slug


def blacklist_reason(keys_to_check: list[str], texts: list[str], config_keys: tuple[str, ...],
                     runtime: dict[str, tuple[str, int]], now_ms: int) -> str | None:
    """The reason the first matching blacklist entry applies, or None.

    ``keys_to_check`` are exact identifiers (token id, condition id, slug, source account);
    ``texts`` are what keyword entries (``kw:...``, ``re:...``) are matched against (title, slug).
    ``runtime`` maps entry -> (reason, expires_at ms, 0 = never); expired entries do not count.
    Everything compares case-insensitively (slugs and hex ids arrive in either case).
    """
    entries: list[tuple[str, str]] = [(k, f"{k} is in risk.blacklist_token_keys") for k in config_keys]
    for key, (why, expires_at) in runtime.items():
        if expires_at == 0 or expires_at > now_ms:
            entries.append((key, f"{key}: {why}" if why else key))
    wanted = {k.lower() for k in keys_to_check if k}
    haystacks = [t.lower() for t in texts if t]
    for entry, reason in entries:
        low = entry.lower()
        if low.startswith(KEYWORD_PREFIX):
            needle = low[len(KEYWORD_PREFIX):].strip()
            if needle and any(needle in h for h in haystacks):
                return reason
        elif low.startswith(REGEX_PREFIX):
            if any(_regex(entry[len(REGEX_PREFIX):]).search(h) for h in haystacks):
                return reason
        elif low in wanted:
            return reason
    return None


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(pattern), re.IGNORECASE)  # a bad pattern matches itself literally


def market_end_ms(end_date: str | None) -> int | None:
    """The market's end (ISO-8601 from Gamma, e.g. ``2026-11-30T12:00:00Z``) as epoch ms, for the
    session's countdown and deadline (D4); None when unknown or unreadable."""
    if not end_date:
        return None
    try:
        when = dt.datetime.fromisoformat(end_date.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def market_facts(sig: Signal) -> dict[str, Any]:
    """What a worker session must know of the token's market, for its START params (the venue
    plan's contract: the worker reads ``market_version`` "v1", ``min_order_size`` 5.0,
    ``neg_risk`` false and ``condition_id`` "" when absent).

    ``market_version`` is the signal's Gamma version checked against the token id
    (shared.venue.ids.outcome): a version polyfleet does not know, or an id shaped for the other
    system, raises :class:`UnknownMarketVersion` (the token is rejected with its text, nothing is
    started). A signal that does not know its market's version (no metadata, or written before
    the field existed) counts as v1 (docs/redis-schema.md, "market systems")."""
    system = "v1" if sig.market_version is None else \
        outcome(sig.token_id, sig.market_version, sig.condition_id or sig.slug).system
    facts: dict[str, Any] = {"market_version": system, "neg_risk": bool(sig.neg_risk),
                             "condition_id": sig.condition_id}
    if sig.min_order_size:
        facts["min_order_size"] = sig.min_order_size  # Gamma orderMinSize; unknown: the worker's default
    if sig.fee_rate is not None:  # unknown: the worker reads the market's fee schedule from the venue
        facts["fee_rate"] = sig.fee_rate
        facts["fee_exponent"] = sig.fee_exponent or 1.0
    return facts
