"""How one strategy intent is worked at the venue (D6; docs/strategy.md section 14). Pure: no I/O.

:class:`OrderWork` turns an :class:`OrderIntent` into placements and learns from their outcomes:

* slices between ``order_slice_min`` and ``order_slice_max`` (equal parts, two decimals);
* per slice, attempts with a price concession (``price_tolerance_step``; ``aggressive_step`` for an
  aggressive SELL, which keeps conceding until ``aggressive_timeout``), never past a bound: the
  BUY cap, the SELL floor (the profit target when conservative, the entry when aggressive) or, for
  a liquidation, ``exit_floor_price``;
* prices rounded to the live tick size at each placement (a tick size change takes effect at once);
* venue minimums (docs/venue.md P2): a marketable order under $1 notional is raised (BUY) or not
  sent (SELL), an order under the market's own resting minimum (``min_order_size`` of the START
  params) is sent FAK, as it cannot rest. FOK/FAK amounts are made exact by the venue room
  (shared/venue/amounts.py): a BUY raised to $1 spends at most its size x price, rounded down to
  the cent;
* "not enough balance / allowance" shrinks the size to what the account can pay for (or holds)
  and retries without conceding;
* a SELL never asks for more than the venue says is held.

The session's order desk (:mod:`services.maker_worker.desk`) does the I/O: it asks :meth:`OrderWork.next`
for a placement, places it, waits for its fills, and reports with :meth:`OrderWork.on_outcome`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.maker_worker.strategy import OrderIntent, exit_price, round_to_tick, shares
from shared.config import ExecutionSection

EPS = 1e-9
DEFAULT_MIN_SIZE = 5.0  # shares: a market's resting minimum when its START params do not name one
VENUE_MIN_NOTIONAL = 1.0  # $: the smallest marketable order
MAX_SHRINKS = 3  # balance shrinks per slice before giving the slice up
BALANCE_TEXT = "not enough balance / allowance"
SHRINK_MARGIN = 0.98  # leave room for fees and rounding when sizing to the balance


def is_balance_error(text: str) -> bool:
    return "not enough balance" in text.lower() or "allowance" in text.lower()


def slice_sizes(total: float, x: ExecutionSection) -> list[float]:
    """``total`` in equal slices of at most ``order_slice_max``; a total under ``order_slice_min``
    goes out whole (it cannot be split further); the last slice takes the rounding remainder."""
    total = shares(total)
    if total <= 0:
        return []
    lo, hi = min(x.order_slice_min, x.order_slice_max), max(x.order_slice_min, x.order_slice_max)
    if total <= hi:
        return [total]
    n = math.ceil(total / hi - EPS)
    n = min(n, max(1, math.floor(total / lo + EPS)))  # never slices below the minimum
    part = shares(total / n)
    out = [part] * (n - 1)
    out.append(round(total - part * (n - 1), 2))
    return out


def fit_to_venue(side: str, price: float, size: float, marketable: bool,
                 min_size: float = DEFAULT_MIN_SIZE, min_notional: float = VENUE_MIN_NOTIONAL,
                 cap_size: float | None = None) -> tuple[float, str]:
    """(size, "") adjusted to the venue's minimums, or (0, why) when it cannot be sent.

    A marketable BUY under ``min_notional`` is raised to reach it (unless ``cap_size`` forbids);
    a marketable SELL cannot be raised (we sell what we hold), so it is not sent. An order that
    would rest needs ``min_size`` shares; below that the caller sends it FAK (see :func:`order_type`).
    """
    size = shares(size)
    if size <= 0:
        return 0.0, "nothing to send"
    if marketable and price * size < min_notional - EPS:
        if side == "SELL":
            return 0.0, f"SELL {size:g} @ {price:g} is under the venue's ${min_notional:g} minimum"
        need = math.ceil(min_notional / price * 100 - 1e-6) / 100
        if cap_size is not None and need > cap_size + EPS:
            return 0.0, f"BUY {need:g} needed for ${min_notional:g} is more than {cap_size:g} affordable"
        size = need
    if not marketable and size < min_size - EPS:
        return 0.0, f"{side} {size:g} does not cross the book and is under the resting minimum {min_size:g}"
    return size, ""


def order_type(size: float, wait_sec: float, min_size: float = DEFAULT_MIN_SIZE) -> str:
    """GTC when the rest may wait for fills; FAK when there is no wait or it is too small to rest."""
    return "GTC" if wait_sec > 0 and size >= min_size - EPS else "FAK"


def is_marketable(side: str, price: float, bid: float | None, ask: float | None) -> bool:
    if side == "BUY":
        return ask is not None and price >= ask - EPS
    return bid is not None and price <= bid + EPS


@dataclass(frozen=True)
class Placement:
    side: str
    price: float
    size: float
    order_type: str
    slice_no: int
    attempt: int  # price concessions made in this slice so far
    marketable: bool


@dataclass(frozen=True)
class Bounds:
    """What the concession may not pass. BUY: ``cap`` (highest price); SELL: ``floor`` (lowest)."""

    cap: float = 1.0
    floor: float = 0.0


class OrderWork:
    def __init__(self, intent: OrderIntent, x: ExecutionSection, bounds: Bounds, started_ms: int,
                 exit_attempt_base: int = 0, min_size: float = DEFAULT_MIN_SIZE,
                 min_notional: float = VENUE_MIN_NOTIONAL) -> None:
        self.intent, self.x, self.bounds = intent, x, bounds
        self.side = intent.side
        self.started_ms = started_ms
        self.exit_attempt_base = exit_attempt_base
        self.min_size, self.min_notional = min_size, min_notional
        self.aggressive_sell = intent.side == "SELL" and not intent.exit and x.sell_mode == "aggressive"
        self.slices = slice_sizes(intent.size, x)
        self.slice_no = 0
        self.slice_left = self.slices[0] if self.slices else 0.0
        self.attempt = 0  # concessions in the current slice
        self.placements = 0  # in the current slice
        self.shrinks = 0
        self.size_cap: float | None = None  # from a balance reject: at most this much per placement
        self.filled = 0.0
        self.cost = 0.0
        self.last_error = ""
        self.gave_up = ""

    # --- what the session reads -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.gave_up != "" or self.slice_no >= len(self.slices)

    @property
    def avg_price(self) -> float:
        return self.cost / self.filled if self.filled > 0 else 0.0

    def price_for(self, attempt: int, tick_size: float, bid: float | None) -> float:
        """The limit for ``attempt`` concessions (0 = the intent's price), on the live tick grid."""
        x, i = self.x, self.intent
        if i.exit:
            return exit_price(bid, tick_size, self.exit_attempt_base + attempt, x)
        if self.side == "BUY":
            price = round_to_tick(i.price + attempt * x.price_tolerance_step, tick_size, down=False)
            cap = round_to_tick(self.bounds.cap, tick_size, down=True)
            return min(price, cap) if cap >= tick_size else price
        step = x.aggressive_step if self.aggressive_sell else x.price_tolerance_step
        price = round_to_tick(i.price - attempt * step, tick_size, down=True)
        floor = round_to_tick(max(self.bounds.floor, tick_size), tick_size, down=False)
        return max(price, floor)

    def attempts_left(self, now_ms: int) -> bool:
        if self.aggressive_sell and self.x.aggressive_timeout > 0:
            return now_ms - self.started_ms < self.x.aggressive_timeout * 1000 or self.attempt == 0
        return self.attempt <= self.x.retry_attempts

    # --- the loop ---------------------------------------------------------------------------

    def next(self, now_ms: int, tick_size: float, bid: float | None, ask: float | None,
             held: float | None = None) -> Placement | None:
        """The next placement, or None when the work is done (see :attr:`gave_up`).

        ``held``: the venue's position, required before a SELL (we sell only what is there).
        """
        while not self.done:
            if not self.attempts_left(now_ms):
                self.gave_up = f"no fill after {self.attempt} attempt(s): {self.last_error or 'not filled'}"
                return None
            size = self.slice_left
            if self.size_cap is not None:
                size = min(size, self.size_cap)
            if self.side == "SELL" and held is not None:
                size = min(size, shares(held))
            price = self.price_for(self.attempt, tick_size, bid)
            marketable = is_marketable(self.side, price, bid, ask)
            size, why = fit_to_venue(self.side, price, size, marketable, self.min_size, self.min_notional,
                                     cap_size=self.size_cap)
            if size <= 0:
                if self.side == "SELL" and held is not None and shares(held) <= 0:
                    self.gave_up = "nothing held to sell"
                else:
                    self.gave_up = why
                return None
            return Placement(self.side, price, size, order_type(size, self.x.wait_sec, self.min_size),
                             self.slice_no, self.attempt, marketable)
        return None

    def on_outcome(self, placement: Placement, filled: float, avg_price: float, error: str = "",
                   affordable: float | None = None) -> None:
        """What one placement achieved. ``affordable``: after a balance reject, the shares the account
        can pay for (BUY: cash / price) or holds (SELL)."""
        if filled > EPS:
            self.filled = round(self.filled + filled, 6)
            self.cost += filled * avg_price
            self.slice_left = round(self.slice_left - filled, 6)
            self.last_error = ""
        if error:
            self.last_error = error
        if self.slice_left < 0.01 - EPS:
            self._next_slice()
            return
        if error and is_balance_error(error):
            self._shrink(placement, affordable)
            return
        self.attempt += 1  # not (fully) filled at this price: the next try concedes one step

    def _shrink(self, placement: Placement, affordable: float | None) -> None:
        self.shrinks += 1
        if self.shrinks > MAX_SHRINKS:
            self.gave_up = f"{BALANCE_TEXT} after {MAX_SHRINKS} shrinks"
            return
        target = placement.size * 0.5 if affordable is None else affordable * SHRINK_MARGIN
        if affordable is not None and affordable * SHRINK_MARGIN >= placement.size - EPS:
            target = placement.size * 0.8  # the balance looks enough, yet refused (allowance, reservations)
        new = shares(target)
        if new <= 0:
            self.gave_up = f"{BALANCE_TEXT}: nothing affordable"
            return
        self.size_cap = new

    def _next_slice(self) -> None:
        self.slice_no += 1
        if self.slice_no < len(self.slices):
            self.slice_left = self.slices[self.slice_no]
            self.attempt = 0
            self.shrinks = 0
