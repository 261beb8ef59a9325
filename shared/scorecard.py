"""The leader scorecard (docs/copytrading.md "Scorecard"), pure: what following each wallet did,
from the rows it is given (no I/O; shared/scorecard_reads.py reads them from Redis for the CLI
and the API). Every metric counts only what those rows hold: the newest entries of each stream.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.config import ScorecardSection
from shared.marks import as_float, unrealized
from shared.messages import AuditEvent, Fill, Signal, TradeStatus
from shared.venue.data_stats import LeaderStats

SCREEN = "screen"  # the market screen's signals copy no one
COPIED = ("token.queued",)
SKIPPED = ("signal.ignored", "token.rejected")
HOUR_MS = 3_600_000
CURVE_POINTS = 60


def is_leader_signal(sig: Signal) -> bool:
    return bool(sig.account) and sig.source != SCREEN


def reason_class(reason: str) -> str:
    """A skip reason without its particulars, so equal causes count together: the text before the
    first colon, numbers as ``#`` ("slippage guard: best ask 0.56 is ..." -> "slippage guard")."""
    head = reason.split(":", 1)[0].strip() or "no reason given"
    return re.sub(r"\d+(\.\d+)?", "#", head)


def slippage_bps(leader_price: float, our_price: float) -> float | None:
    """Our BUY's price against the leader's, in bps of the leader's; positive = we paid more."""
    if leader_price <= 0:
        return None
    return (our_price - leader_price) / leader_price * 10_000


@dataclass
class Spread:
    """A distribution summary: how many, the median and the largest."""

    n: int = 0
    p50: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls()
        return cls(len(values), round(statistics.median(values), 2), round(max(values), 2))


def _ts(sig: Signal) -> int:
    return sig.ts_event or sig.ts_init


def two_sided_trades(signals: Iterable[Signal], window_ms: int) -> int:
    """Trades that take the other side of a market the wallet traded within ``window_ms`` before:
    the opposite side of the same token, or the same side of the market's other outcome (buying
    Yes and No is quoting both sides). A market is its condition id (the token when unknown)."""
    by_market: dict[str, list[Signal]] = defaultdict(list)
    for sig in sorted(signals, key=_ts):
        by_market[sig.condition_id or sig.token_id].append(sig)
    count = 0
    for trades in by_market.values():
        for i, sig in enumerate(trades):
            for prev in reversed(trades[:i]):
                if _ts(sig) - _ts(prev) > window_ms:
                    break
                if (prev.token_id == sig.token_id) != (prev.side == sig.side):
                    count += 1
                    break
    return count


def busiest_hour(signals: Iterable[Signal]) -> int:
    """The most trades in any 60-minute window."""
    times = sorted(_ts(s) for s in signals)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= HOUR_MS:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@dataclass
class Flags:
    market_maker: bool = False
    two_sided_trades: int = 0  # trades on the other side of a market within mm_window_min
    high_frequency: bool = False
    busiest_hour: int = 0  # most trades in any hour


def flags(signals: Sequence[Signal], cfg: ScorecardSection) -> Flags:
    pairs = two_sided_trades(signals, int(cfg.mm_window_min * 60_000))
    hour = busiest_hour(signals)
    return Flags(pairs >= cfg.mm_min_pairs, pairs, hour > cfg.hf_trades_per_hour, hour)


@dataclass
class LeaderCard:
    account: str
    followed: bool  # an enabled copytrade target now
    signals: dict[str, int] = field(default_factory=dict)  # per source
    leader_volume_usd: float = 0.0  # the leader's own notional (size x price) over its signals read
    leader_value_usd: float | None = None  # its portfolio value (Data API /value) when known
    # its own PnL, volume and trade count over copytrade.leader_stats_window, as the venue reports them
    # (pf:leader:stats, read by the collector from the Data API); None until read
    venue_stats: LeaderStats | None = None
    copies: int = 0  # BUY signals admitted (token.queued)
    skipped: int = 0  # BUY signals not copied (signal.ignored, token.rejected)
    skip_reasons: dict[str, int] = field(default_factory=dict)  # reason_class -> count
    copied_tokens: int = 0  # tokens whose hash names this leader
    open_copies: int = 0  # of those, holding shares now
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    slippage_bps: Spread = field(default_factory=Spread)  # our first BUY fill vs the leader's price
    delay_ms: dict[str, Spread] = field(default_factory=dict)  # per source: ts_init - ts_event
    flags: Flags = field(default_factory=Flags)
    # Each copied token's PnL (realised + unrealised), oldest copy first: what auto-demotion's PnL
    # rule sums the newest of (shared/demotion.py). Not in the JSON: one number per copy.
    copy_pnl: list[float] = field(default_factory=list)
    # The same added up, as [queued_at ms, copied PnL so far] per copy (at most CURVE_POINTS of
    # them, the last always): the dashboard's chart per leader.
    pnl_curve: list[list[float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["copy_pnl"]
        return out


def pnl_curve(copies: Sequence[tuple[float, float]], most: int = CURVE_POINTS) -> list[list[float]]:
    """``(queued_at, PnL)`` per copy, oldest first, as the running total; thinned to ``most`` points
    (evenly, keeping the last: the total now)."""
    out, total = [], 0.0
    for ts, pnl in copies:
        total += pnl
        out.append([int(ts), round(total, 6)])
    step = -(-len(out) // most) if most > 0 else 1
    return out if step <= 1 else out[::step] + ([out[-1]] if (len(out) - 1) % step else [])


def first_buy_fills(fills: Iterable[Fill | TradeStatus]) -> dict[str, list[tuple[int, float]]]:
    """Each token's BUY fills (time, price), oldest first, leaving out fills of FAILED trades."""
    rows = list(fills)
    void = {f.trade_id for f in rows if f.status == "FAILED" and f.trade_id}
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for f in rows:
        if isinstance(f, Fill) and f.side == "BUY" and not (f.trade_id and f.trade_id in void):
            out[f.token_id].append((f.ts_init, f.price))
    for buys in out.values():
        buys.sort()
    return out


def _entry_price(buys: list[tuple[int, float]], since: int) -> float | None:
    """The price of the first BUY fill at or after the copy was queued (an earlier admission's
    fills of the same token are not this copy's)."""
    return next((price for ts, price in buys if ts >= since), None)


def scorecards(followed: Sequence[str], signals: Sequence[Signal], events: Sequence[AuditEvent],
               tokens: dict[str, dict[str, str]], fills: Sequence[Fill | TradeStatus],
               marks: dict[str, float | None], cfg: ScorecardSection,
               values: dict[str, float] | None = None,
               stats: dict[str, LeaderStats] | None = None) -> list[LeaderCard]:
    """One card per leader: every followed wallet, and any other wallet the rows name.

    ``tokens`` are pf:token hashes (those without an ``account``, or the screen's, are no one's
    copies); ``marks`` the tokens' mark prices (None: no book); ``values`` the leaders' portfolio
    values known (pf:leader:value); ``stats`` their venue PnL and volume (pf:leader:stats)."""
    on = {a.lower() for a in followed}
    sigs: dict[str, list[Signal]] = defaultdict(list)
    for s in signals:
        if is_leader_signal(s):
            sigs[s.account.lower()].append(s)
    price_of = {s.id: s.price for s in signals}
    cards: dict[str, LeaderCard] = {}

    def card(account: str) -> LeaderCard:
        low = account.lower()
        if low not in cards:
            cards[low] = LeaderCard(low, low in on)
        return cards[low]

    for account in on:
        card(account)
    for account, rows in sigs.items():
        c = card(account)
        c.signals = dict(Counter(s.source for s in rows))
        c.leader_volume_usd = round(sum(s.size * s.price for s in rows), 6)
        delays: dict[str, list[float]] = defaultdict(list)
        for s in rows:
            if s.ts_event > 0:
                delays[s.source].append(float(s.ts_init - s.ts_event))
        c.delay_ms = {src: Spread.of(v) for src, v in sorted(delays.items())}
        c.flags = flags(rows, cfg)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        account = str(e.detail.get("account") or "")
        if not account or e.detail.get("source") == SCREEN or e.detail.get("side") == "SELL":
            continue
        if e.kind in COPIED:
            card(account).copies += 1
        elif e.kind in SKIPPED:
            card(account).skipped += 1
            reasons[account.lower()][reason_class(e.reason)] += 1
    for account, counts in reasons.items():
        cards[account].skip_reasons = dict(counts.most_common())
    buys = first_buy_fills(fills)
    slips: dict[str, list[float]] = defaultdict(list)
    pnl_by_copy: dict[str, list[tuple[float, float]]] = defaultdict(list)  # account -> (queued_at, PnL)
    for token_id, h in tokens.items():
        account = h.get("account", "")
        if not account or h.get("source") == SCREEN:
            continue
        c = card(account)
        c.copied_tokens += 1
        position = as_float(h.get("position"))
        c.open_copies += abs(position) > 1e-9
        realized = as_float(h.get("realized_pnl"))
        open_pnl = unrealized(position, as_float(h.get("avg_cost")), marks.get(token_id))
        c.realized_pnl += realized
        c.unrealized_pnl += open_pnl
        pnl_by_copy[c.account].append((as_float(h.get("queued_at")), realized + open_pnl))
        leader_price = as_float(h.get("leader_price"), price_of.get(h.get("signal_id", ""), 0.0))
        ours = _entry_price(buys.get(token_id, []), int(as_float(h.get("queued_at"))))
        bps = slippage_bps(leader_price, ours) if ours is not None else None
        if bps is not None:
            slips[c.account].append(bps)
    for account, bps_list in slips.items():
        cards[account].slippage_bps = Spread.of(bps_list)
    for account, pnls in pnl_by_copy.items():
        ordered = sorted(pnls, key=lambda x: x[0])
        cards[account].copy_pnl = [round(p, 6) for _, p in ordered]
        cards[account].pnl_curve = pnl_curve(ordered)
    for c in cards.values():
        c.realized_pnl, c.unrealized_pnl = round(c.realized_pnl, 6), round(c.unrealized_pnl, 6)
        c.leader_value_usd = (values or {}).get(c.account)
        c.venue_stats = (stats or {}).get(c.account)
    return sorted(cards.values(), key=lambda c: (not c.followed, -(c.realized_pnl + c.unrealized_pnl), c.account))
