"""The leader backtest (docs/copytrading.md "Backtest"), pure: a wallet's past trades replayed
through today's copy rules (shared/copy_rules.py: sizing, the slippage guard, exits that follow the
leader's fraction, the leader's budget) with a stated fill model. No I/O: shared/backtest_reads.py
reads the trades, the leader's portfolio value and the marks; shared/backtest_report.py turns a
:class:`Replay` and the marks into the figures the CLI and the API print.

What today's orchestrator does and the replay does too: one copy per token (a token it handled is
not copied again), the leader's holdings as its trades add up (BUYs less SELLs since the window
began) for the exit fractions, trades below the target's ``min_size`` never seen. What it cannot
replay is said by :meth:`FillModel.describe`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.config import CopyRules
from shared.copy_rules import HELD_DUST, exit_fraction, guard, size_copy
from shared.venue.data_api import Trade


@dataclass(frozen=True)
class FillModel:
    slippage_bps: float  # our price is the reference price this much worse
    delay_sec: float  # we act this long after the leader's trade (detection delay)

    def price(self, reference: float, side: str) -> float:
        """Our fill: ``reference`` +/- ``slippage_bps`` (a BUY pays more, a SELL gets less), within [0, 1]."""
        f = self.slippage_bps / 10_000
        return min(reference * (1 + f), 1.0) if side == "BUY" else max(reference * (1 - f), 0.0)

    def describe(self) -> str:
        return (f"each copy acts {self.delay_sec:g} s after the leader's trade (detection delay), at the last price "
                f"the leader's own trades show for the token by then, {self.slippage_bps:g} bps worse (a BUY pays "
                "more, a SELL gets less); fills are whole and immediate, without fees; the guard judges that price "
                "(depth is not replayed: the venue keeps no past books); a copy is held until the leader's sells "
                "exit it (the session's own trading is not replayed), and the fleet's admission (blacklist, kill "
                "switch, risk limits) is not either; proportional sizing uses the leader's portfolio value now")


@dataclass
class Copy:
    token_id: str
    title: str
    outcome: str
    condition_id: str
    at: int  # epoch s we bought: the leader's trade + the delay
    leader_price: float
    price: float  # our fill
    shares: float  # bought
    notional: float  # its claim on the leader's budget ($ at the leader's price)
    how: str  # how it was sized
    held: float = 0.0  # shares still held
    realized: float = 0.0
    kept: float = 1.0  # the share of ``notional`` still claimed (partial exits keep 1 - fraction)
    exits: int = 0


@dataclass
class Skip:
    at: int  # the leader's trade time (epoch s)
    token_id: str
    reason: str


@dataclass
class Replay:
    start: int
    end: int
    trades: int = 0
    buys: int = 0
    sells: int = 0
    below_min_size: int = 0
    copies: dict[str, Copy] = field(default_factory=dict)  # by token: one copy per token
    skips: list[Skip] = field(default_factory=list)
    exits_full: int = 0
    exits_partial: int = 0
    sells_without_copy: int = 0  # the leader sold a token we hold no copy of
    invested: float = 0.0
    realized: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch s, realised + open copies marked)
    last_price: dict[str, float] = field(default_factory=dict)  # the leader's last price per token


class _Book:
    """The replay's running state: the leader's holdings, prices, and our copies' marked value."""

    def __init__(self, rep: Replay) -> None:
        self.rep = rep
        self.held: dict[str, float] = {}  # the leader's shares per token, as its trades add up
        self.open_value: dict[str, float] = {}  # token -> held x (last price - our price)
        self.open_total = 0.0

    def revalue(self, token: str) -> None:
        c = self.rep.copies.get(token)
        value = c.held * (self.rep.last_price[token] - c.price) if c and c.held > 0 else 0.0
        self.open_total += value - self.open_value.get(token, 0.0)
        self.open_value[token] = value

    def leader_open(self) -> float:
        return sum(c.notional * c.kept for c in self.rep.copies.values())

    def equity(self) -> float:
        return self.rep.realized + self.open_total


def replay(trades: Sequence[Trade], rules: CopyRules, model: FillModel, start: int, end: int, *,
           order_size: Callable[[Trade], float], min_size: float = 0.0, leader_value: float | None = None,
           bankroll: float = 0.0) -> Replay:
    """Replay ``trades`` (oldest first; equal seconds keep their order) made between ``start`` and
    ``end`` (epoch s). ``order_size`` is the merged ``maker_strategy.order_size`` of a trade's token
    (fixed sizing); ``leader_value`` its portfolio value (proportional); ``bankroll`` ours."""
    ordered = sorted(trades, key=lambda t: t.timestamp)
    rep = Replay(start, end, trades=len(ordered), curve=[(start, 0.0)])
    book = _Book(rep)
    seen = 0  # trades whose price the replay knows (made at or before the current act time)
    for trade in ordered:
        rep.buys += trade.side == "BUY"
        rep.sells += trade.side == "SELL"
        if trade.size < min_size:  # the collector drops it: no signal, no holding, no copy
            rep.below_min_size += 1
            continue
        act = trade.timestamp + model.delay_sec
        if act > end:  # acts are in trade order, so every later trade is past the end too
            if trade.side == "BUY":
                rep.skips.append(Skip(trade.timestamp, trade.token_id, f"not detected yet: the window ends before "
                                      f"we would act ({model.delay_sec:g} s detection delay)"))
            continue
        while seen < len(ordered) and ordered[seen].timestamp <= act:
            known = ordered[seen]
            rep.last_price[known.token_id] = known.price
            book.revalue(known.token_id)
            seen += 1
        if trade.side == "BUY":
            _buy(rep, book, trade, rules, model, order_size(trade), leader_value, bankroll)
        else:
            _sell(rep, book, trade, rules, model)
        book.revalue(trade.token_id)
        rep.curve.append((math.ceil(act), round(book.equity(), 6)))
    return rep


def _buy(rep: Replay, book: _Book, t: Trade, rules: CopyRules, model: FillModel, fixed: float,
         leader_value: float | None, bankroll: float) -> None:
    book.held[t.token_id] = book.held.get(t.token_id, 0.0) + t.size
    if t.token_id in rep.copies:
        rep.skips.append(Skip(t.timestamp, t.token_id, "token already copied: one copy per token (the orchestrator "
                                                        "ignores a token it handled)"))
        return
    size = size_copy(rules, t.size, t.price, fixed, book.leader_open(), leader_value, bankroll)
    if not size.ok:
        rep.skips.append(Skip(t.timestamp, t.token_id, size.reason))
        return
    price = model.price(rep.last_price[t.token_id], "BUY")
    why = guard([(price, size.shares)], t.price, size.shares, rules.max_slippage_bps)
    if why is not None:
        rep.skips.append(Skip(t.timestamp, t.token_id, why))
        return
    rep.copies[t.token_id] = Copy(t.token_id, t.title, t.outcome, t.condition_id,
                                  math.ceil(t.timestamp + model.delay_sec), t.price, price, size.shares,
                                  size.notional, size.reason, held=size.shares)
    rep.invested += size.shares * price


def _sell(rep: Replay, book: _Book, t: Trade, rules: CopyRules, model: FillModel) -> None:
    before = book.held.get(t.token_id, 0.0)
    if before - t.size < HELD_DUST:
        book.held.pop(t.token_id, None)
    else:
        book.held[t.token_id] = before - t.size
    c = rep.copies.get(t.token_id)
    if c is None or c.held < HELD_DUST:
        rep.sells_without_copy += 1
        return
    fraction = exit_fraction(rules.exit_mode, before, t.size)
    if fraction is None:
        sold, c.kept = c.held, 0.0
        rep.exits_full += 1
    else:
        sold = math.floor(fraction * c.held * 100 + 1e-9) / 100  # the worker's trim: down to 0.01
        if sold < HELD_DUST:
            return
        c.kept *= 1 - fraction
        rep.exits_partial += 1
    gain = sold * (model.price(rep.last_price[t.token_id], "SELL") - c.price)
    c.realized += gain
    rep.realized += gain
    c.held = round(c.held - sold, 6)
    c.exits += 1
    if c.held < HELD_DUST:
        c.held, c.kept = 0.0, 0.0
