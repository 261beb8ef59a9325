"""The predecessor's volatility strategy as a pure state machine (D3-D5).

docs/strategy.md is the contract: states FLAT / BUYING / LONG / SELLING, a drop from the window
high of the ask buys, a bid above the entry by ``profit_pct`` sells, awaiting-confirmation states,
rollback on reject, sell-only from the countdown, liquidation from the deadline or an EXIT.
No I/O and no clock: every input carries ``now_ms``; :meth:`status` / :meth:`restore` make the
whole state a JSON object so another worker resumes it.
"""

from __future__ import annotations

import math
from collections import deque
from enum import StrEnum
from typing import Any

from services.maker_worker.deadline import resolve_deadline, resolve_sell_only_at
from services.maker_worker.strategy import OrderIntent, exit_price, round_to_tick, shares
from shared.config import ExecutionSection, MakerStrategySection, RunParamsSection
from shared.ticks import Tick

SNAPSHOT_VERSION = 1
EPS = 1e-9


class State(StrEnum):
    FLAT = "FLAT"
    BUYING = "BUYING"  # awaiting BUY confirmation
    LONG = "LONG"
    SELLING = "SELLING"  # awaiting SELL confirmation


class VolatilityStrategy:
    def __init__(self, params: MakerStrategySection, run: RunParamsSection, execution: ExecutionSection,
                 start_ms: int, market_end_ms: int | None = None) -> None:
        self.p, self.run, self.x = params, run, execution
        self.started_ms = start_ms
        self.deadline_ms = resolve_deadline(run, market_end_ms, start_ms)
        self.sell_only_at_ms = resolve_sell_only_at(params.countdown, run, self.deadline_ms, start_ms)
        self.dust = max(params.min_market_order_size, 0.01)
        self.state = State.FLAT
        self.sell_only = False
        self.sell_only_reason = ""
        self.exiting = False
        self.exit_reason = ""
        self.position = 0.0
        self.avg_cost = 0.0
        self.realized_pnl = 0.0
        self.fees = 0.0
        self.last_buy_price = 0.0
        self.sells_done = 0
        self.trades = 0
        # [second, max ask] with strictly decreasing asks: the front is the window high.
        self.window: deque[tuple[int, float]] = deque()
        self.last_bid: float | None = None
        self.last_ask: float | None = None
        self.tick_size = 0.01
        self.awaiting_since_ms = 0
        self.order_sold = 0.0  # shares sold by the SELL order now out (a sell "counts" when > 0)
        self.reject_until_ms: dict[str, int] = {"BUY": 0, "SELL": 0}
        self.last_reject: dict[str, Any] = {}
        self.exit_attempts = 0
        self.trimming = False  # the SELL out is a partial exit's (not a profit sell: no incremental drop)

    # --- derived values ---------------------------------------------------------------------

    @property
    def awaiting(self) -> bool:
        return self.state in (State.BUYING, State.SELLING)

    @property
    def window_high(self) -> float | None:
        return self.window[0][1] if self.window else None

    def effective_drop_pct(self) -> float:
        if not self.p.enable_incremental_drop_pct:
            return self.p.drop_pct
        stepped = self.p.drop_pct + self.sells_done * self.p.incremental_drop_pct_step
        return max(self.p.drop_pct, min(stepped, self.p.incremental_drop_pct_cap))

    def unrealized_pnl(self) -> float:
        if self.position < self.dust or self.last_bid is None:
            return 0.0
        return self.position * (self.last_bid - self.avg_cost)

    def buy_size(self, ask: float) -> float:
        want = self.p.order_size - self.position if self.p.order_size_is_target else self.p.order_size
        size = shares(want)
        if size <= 0:
            return 0.0
        if size * ask < self.p.min_quote_amount - EPS:
            size = math.ceil(self.p.min_quote_amount / ask * 100 - 1e-6) / 100
        return size

    # --- inputs -----------------------------------------------------------------------------

    def on_tick(self, tick: Tick, now_ms: int) -> OrderIntent | None:
        self._advance(now_ms)
        if tick.stale:
            return None
        self.tick_size = tick.tick_size or self.tick_size
        self.last_bid, self.last_ask = tick.bid, tick.ask
        if tick.ask is not None:
            self._remember_ask(now_ms, tick.ask)
        return self._decide(now_ms)

    def on_timer(self, now_ms: int) -> OrderIntent | None:
        self._advance(now_ms)
        if self.exiting:
            return self._decide(now_ms)
        return None

    def on_fill(self, side: str, size: float, price: float, now_ms: int, fee: float = 0.0,
                final: bool = True) -> None:
        if size > 0:
            self.trades += 1
            self.fees += fee
            if side == "BUY":
                total = self.position + size
                self.avg_cost = (self.position * self.avg_cost + size * price) / total
                self.position = total
                self.last_buy_price = price
                self.realized_pnl -= fee
            else:
                sold = min(size, self.position)
                self.realized_pnl += sold * (price - self.avg_cost) - fee
                self.position = max(0.0, self.position - size)
                self.order_sold += sold
                if self.position < self.dust:
                    self.avg_cost = 0.0
        if final and self.awaiting:
            self._order_ended()
        elif not self.awaiting:
            self.state = State.LONG if self.position >= self.dust else State.FLAT

    def on_reject(self, side: str, reason: str, now_ms: int) -> None:
        self.last_reject = {"side": side, "reason": reason, "ts": now_ms}
        pause = self.x.order_interval_sec if self.exiting else self.p.reject_cooldown_sec
        self.reject_until_ms[side] = now_ms + int(pause * 1000)
        if self.awaiting:
            self._order_ended()

    def reconcile(self, position: float, now_ms: int, avg_cost: float | None = None) -> None:
        """The venue's position wins over whatever this state believed (resume, no-fill reconcile)."""
        self._advance(now_ms)
        if position < self.dust:
            self.position, self.avg_cost = max(position, 0.0), 0.0
        else:
            if avg_cost is not None and avg_cost > 0:
                self.avg_cost = avg_cost
            elif self.avg_cost <= 0:
                self.avg_cost = self.last_buy_price or (self.last_ask or 0.0)
            self.position = position
        if self.awaiting:
            self._order_ended()
        else:
            self.state = State.LONG if self.position >= self.dust else State.FLAT

    def request_exit(self, reason: str) -> None:
        if not self.exiting:
            self.exiting, self.exit_reason = True, reason

    def set_sell_only(self, reason: str) -> None:
        if not self.sell_only:
            self.sell_only, self.sell_only_reason = True, reason

    def exit_intent(self, bid: float | None, tick_size: float | None = None,
                    attempt: int | None = None) -> OrderIntent | None:
        """The liquidation sell for ``attempt`` (default: this liquidation's count; docs/strategy.md section 7)."""
        size = shares(self.position)
        if size <= 0 or self.position < self.dust:
            return None
        ts = tick_size or self.tick_size
        n = self.exit_attempts if attempt is None else attempt
        price = exit_price(bid, ts, n, self.x)
        return OrderIntent("SELL", price, size, f"{self.exit_reason or 'exit'}: attempt {n + 1} at bid {bid}", exit=True)

    def begin_exit(self, bid: float | None, now_ms: int) -> OrderIntent | None:
        """The next liquidation sell, entering SELLING (the session's EXIT path); None while an
        order is out or nothing is held."""
        self.request_exit(self.exit_reason or "exit")
        self._advance(now_ms)
        if self.awaiting:
            return None
        if bid is not None:
            self.last_bid = bid
        return self._emit(self.exit_intent(bid), now_ms)

    def trim_intent(self, fraction: float, bid: float | None, now_ms: int, reason: str,
                    sellable: float | None = None) -> OrderIntent | None:
        """A partial exit (the followed wallet sold ``fraction`` of its position): sell that share of
        ours at liquidation prices, entering SELLING; the session trades on with the rest. None while
        an order is out, exiting, or when the share is below dust (docs/copytrading.md). Never more
        than ``sellable`` (the settled shares no pending SELL has sold): shares bought but not settled
        cannot be sold yet, and one of those trades may still FAIL."""
        self._advance(now_ms)
        if self.awaiting or self.exiting:
            return None
        size = shares(self.position * fraction)
        if sellable is not None:
            size = min(size, shares(sellable))
        if size <= 0 or size < self.dust:
            return None
        if bid is not None:
            self.last_bid = bid
        price = exit_price(bid, self.tick_size, 0, self.x)
        self.trimming = True
        return self._emit(OrderIntent("SELL", price, size, reason, exit=True), now_ms)

    # --- internals --------------------------------------------------------------------------

    def _advance(self, now_ms: int) -> None:
        if self.sell_only_at_ms is not None and now_ms >= self.sell_only_at_ms:
            self.set_sell_only("countdown")
        if self.deadline_ms is not None and now_ms >= self.deadline_ms:
            self.request_exit("deadline")

    def _remember_ask(self, now_ms: int, ask: float) -> None:
        sec = now_ms // 1000
        horizon = sec - int(self.p.drop_window_minutes * 60)
        while self.window and self.window[0][0] <= horizon:
            self.window.popleft()
        if self.window and self.window[-1][0] == sec and self.window[-1][1] >= ask:
            return  # the same second already has a higher ask; this one expires with it
        while self.window and self.window[-1][1] <= ask:
            self.window.pop()
        self.window.append((sec, ask))

    def _decide(self, now_ms: int) -> OrderIntent | None:
        if self.awaiting:
            return None
        if self.exiting:
            if now_ms < self.reject_until_ms["SELL"]:
                return None
            return self._emit(self.exit_intent(self.last_bid), now_ms)
        if self.state is State.LONG:
            sell = self._sell_signal(now_ms)
            if sell is not None:
                return self._emit(sell, now_ms)
        return self._emit(self._buy_signal(now_ms), now_ms)

    def _sell_signal(self, now_ms: int) -> OrderIntent | None:
        bid = self.last_bid
        if self.p.disable_sell_signals or bid is None or now_ms < self.reject_until_ms["SELL"]:
            return None
        target = self.avg_cost * (1 + self.p.profit_pct)
        if bid < target - EPS:
            return None
        size = shares(self.position)
        if size <= 0:
            return None
        price = round_to_tick(bid, self.tick_size, down=True)
        return OrderIntent("SELL", price, size, f"bid {bid} >= entry {self.avg_cost:.4f} x (1 + {self.p.profit_pct})")

    def _buy_signal(self, now_ms: int) -> OrderIntent | None:
        ask, high = self.last_ask, self.window_high
        if self.sell_only or ask is None or high is None or now_ms < self.reject_until_ms["BUY"]:
            return None
        if self.state is State.LONG and self.p.disable_duplicate_signal:
            return None
        if not (self.p.min_price - EPS <= ask <= self.p.max_price + EPS) or ask > self.p.buy_price_threshold + EPS:
            return None
        d = self.effective_drop_pct()
        if ask > high * (1 - d) + EPS:
            return None
        if self.state is State.LONG and not ask < self.last_buy_price * (1 - d) - EPS:
            return None
        size = self.buy_size(ask)
        if size <= 0:
            return None
        price = round_to_tick(ask, self.tick_size, down=False)
        return OrderIntent("BUY", price, size, f"ask {ask} <= high {high} x (1 - {d:.4f})")

    def _emit(self, intent: OrderIntent | None, now_ms: int) -> OrderIntent | None:
        if intent is not None:
            self.state = State.BUYING if intent.side == "BUY" else State.SELLING
            self.awaiting_since_ms = now_ms
            self.order_sold = 0.0
        return intent

    def _order_ended(self) -> None:
        if self.state is State.SELLING:
            if self.exiting:
                self.exit_attempts += 1
            elif self.order_sold > 0 and not self.trimming:
                self.sells_done += 1
        self.state = State.LONG if self.position >= self.dust else State.FLAT
        self.awaiting_since_ms = 0
        self.order_sold = 0.0
        self.trimming = False

    # --- snapshot ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "v": SNAPSHOT_VERSION, "state": self.state.value, "sell_only": self.sell_only,
            "sell_only_reason": self.sell_only_reason, "exiting": self.exiting, "exit_reason": self.exit_reason,
            "position": self.position, "avg_cost": self.avg_cost, "realized_pnl": self.realized_pnl,
            "unrealized_pnl": self.unrealized_pnl(), "fees": self.fees, "last_buy_price": self.last_buy_price,
            "sells_done": self.sells_done, "effective_drop_pct": self.effective_drop_pct(),
            "window": [list(e) for e in self.window], "window_high": self.window_high,
            "last_bid": self.last_bid, "last_ask": self.last_ask, "tick_size": self.tick_size,
            "awaiting_since_ms": self.awaiting_since_ms, "order_sold": self.order_sold,
            "reject_until_ms": dict(self.reject_until_ms), "last_reject": dict(self.last_reject),
            "exit_attempts": self.exit_attempts, "started_ms": self.started_ms,
            "sell_only_at_ms": self.sell_only_at_ms, "deadline_ms": self.deadline_ms, "trades": self.trades,
        }

    @classmethod
    def restore(cls, snap: dict[str, Any], params: MakerStrategySection, run: RunParamsSection,
                execution: ExecutionSection) -> VolatilityStrategy:
        """Rebuild from :meth:`status`. Times (deadline, sell-only) are the ones resolved at the first
        start, so a resumed session keeps its original deadline."""
        if snap.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"strategy snapshot version {snap.get('v')!r} is not {SNAPSHOT_VERSION}")
        s = cls(params, run, execution, int(snap["started_ms"]))
        s.deadline_ms, s.sell_only_at_ms = snap.get("deadline_ms"), snap.get("sell_only_at_ms")
        s.state = State(snap["state"])
        s.sell_only, s.sell_only_reason = bool(snap["sell_only"]), str(snap["sell_only_reason"])
        s.exiting, s.exit_reason = bool(snap["exiting"]), str(snap["exit_reason"])
        s.position, s.avg_cost = float(snap["position"]), float(snap["avg_cost"])
        s.realized_pnl, s.fees = float(snap["realized_pnl"]), float(snap["fees"])
        s.last_buy_price, s.sells_done = float(snap["last_buy_price"]), int(snap["sells_done"])
        s.window = deque((int(sec), float(ask)) for sec, ask in snap["window"])
        s.last_bid, s.last_ask = snap.get("last_bid"), snap.get("last_ask")
        s.tick_size = float(snap.get("tick_size") or 0.01)
        s.awaiting_since_ms, s.order_sold = int(snap["awaiting_since_ms"]), float(snap["order_sold"])
        s.reject_until_ms = {k: int(v) for k, v in snap["reject_until_ms"].items()}
        s.last_reject, s.exit_attempts = dict(snap["last_reject"]), int(snap["exit_attempts"])
        s.trades = int(snap.get("trades", 0))
        return s
