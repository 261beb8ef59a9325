"""Exact order amounts in the venue's 6-decimal integer units (docs/venue.md P1-P4). Pure.

A signed order carries two integer amounts: BUY ``maker`` = collateral paid, ``taker`` = shares
received; SELL the reverse. The venue refuses amounts finer than it allows:

* **limit orders (GTC/GTD)** (P1, P4): the size (shares) at most 2 decimals, the price on the
  tick grid within ``[tick, 1 - tick]``. Collateral = size x price is then exact (at most the
  tick's amount decimals), so ``collateral / shares`` *is* the price: :func:`limit_amounts`.
* **marketable orders (FOK/FAK)** (P3): ``maker`` at most 2 decimals and ``taker`` at most 4,
  *whatever the tick*. Size x price rarely fits (1.76 x 0.57 = 1.0032; 12.34 x 0.45 = 5.553;
  5.55 x 0.123 = 0.68265), so :func:`marketable_amounts` rounds, always towards less money out:

  - BUY of ``size`` shares at limit ``price`` with at most ``budget`` of collateral (default
    size x price): exactly ``size`` shares with the collateral rounded up to the cent when that
    stays within the budget and keeps the implied price under ``price + 0.0001``; otherwise
    ``floor2(min(size x price, budget))`` of collateral for ``floor4(collateral / price)`` shares.
    Collateral never exceeds the budget.
  - SELL of ``size`` shares (never more than ``held``): shares ``floor2``, collateral
    ``floor4(shares x price)``. Shares never exceed what is held.

  **The bound.** The implied price (collateral / shares, the price the venue matches by) is never
  better for the counterparty than the limit, and worse for us only by what the rounding forces:
  BUY ``0 <= implied - price < 0.0001`` with exact shares (checked) and ``< price x 0.0001 /
  shares`` from the budget; SELL ``0 <= price - implied < 0.0001 / shares``. Every order that
  meets the $1 minimum has more than one share, so the implied price stays within 0.0001 of the
  limit, short of the next point of the finest tick grid: the order can never match a level
  beyond its limit. (Rounding the other way would put a BUY's implied price below an ask resting
  exactly at the limit, or a SELL's above such a bid: the order would not match at its limit.)

Minimums (P2) are checked before anything is signed (:func:`check_minimum`): an order that may rest
needs the market's own minimum size in shares; a marketable one needs $1 of collateral.
Everything here is integer or :class:`~fractions.Fraction` arithmetic: no float reaches an amount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from shared.venue.errors import VenueRejected

Side = Literal["BUY", "SELL"]
UNITS = 1_000_000  # base units per share or per dollar (6 decimals)
CENT = UNITS // 100  # a 2-decimal step in base units
TAKER_STEP = UNITS // 10_000  # a 4-decimal step in base units
LIMIT_SIZE_DECIMALS = 2
MARKETABLE_TYPES = ("FOK", "FAK")
RESTING_TYPES = ("GTC", "GTD")
MIN_MARKETABLE_UNITS = UNITS  # $1 (P2)
TICKS = (Fraction("0.1"), Fraction("0.01"), Fraction("0.005"), Fraction("0.0025"), Fraction("0.001"),
         Fraction("0.0001"))  # P1
_SNAP = Fraction(1, 10**9)  # a float price this close to a grid point is that point


class AmountRefused(VenueRejected):
    """Refused before anything was signed or sent: the order cannot be expressed within the venue's
    rules (off the tick grid, below the minimum, nothing left after rounding). The text says why."""

    def __init__(self, text: str) -> None:
        super().__init__(text, status=None)


@dataclass(frozen=True, slots=True)
class OrderAmounts:
    """A signed order's amounts in base units, with the limit price they were built for."""

    side: Side
    maker: int
    taker: int
    price: Fraction  # the limit asked for (on the tick grid)

    @property
    def shares(self) -> int:
        return self.taker if self.side == "BUY" else self.maker

    @property
    def collateral(self) -> int:
        return self.maker if self.side == "BUY" else self.taker

    @property
    def size(self) -> float:
        """Shares, as a float for callers that keep floats (exact: at most 6 decimals)."""
        return self.shares / UNITS

    @property
    def implied_price(self) -> Fraction:
        """collateral / shares: the price the venue matches the order by."""
        return Fraction(self.collateral, self.shares)


def exact(value: float | int | str | Decimal | Fraction) -> Fraction:
    """A number as an exact fraction; a float is read as the decimal it prints as (0.57, not
    0.56999999999999995...), which is what a caller holding a float meant."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AmountRefused(f"{value} is not a number")
        return Fraction(repr(value))
    return Fraction(value)


def tick_of(tick: float | str | Decimal | Fraction) -> Fraction:
    t = exact(tick)
    if t not in TICKS:
        raise AmountRefused(f"tick size {_show(t)} is not one the venue uses ({', '.join(_show(x) for x in TICKS)})")
    return t


def on_grid(price: float | str | Decimal | Fraction, tick: float | str | Decimal | Fraction) -> Fraction:
    """``price`` as a point of the tick grid within ``[tick, 1 - tick]`` (P1), or refused."""
    t, p = tick_of(tick), exact(price)
    steps = round(p / t)
    snapped = steps * t
    if abs(snapped - p) > _SNAP:
        raise AmountRefused(f"price {_show(p)} is not on the tick grid {_show(t)}")
    if not t <= snapped <= 1 - t:
        raise AmountRefused(f"price {_show(p)} is outside [{_show(t)}, {_show(1 - t)}]")
    return snapped


def _floor_units(value: Fraction, step: int) -> int:
    """``value`` (in dollars or shares) floored to a multiple of ``step`` base units."""
    return math.floor(value * UNITS / step) * step


def _ceil_units(value: Fraction, step: int) -> int:
    return math.ceil(value * UNITS / step) * step


def limit_amounts(side: Side, price: float | str | Decimal | Fraction, size: float | str | Decimal | Fraction,
                  tick: float | str | Decimal | Fraction) -> OrderAmounts:
    """A GTC/GTD order of ``size`` shares (floored to 2 decimals) at ``price`` (on the grid)."""
    p = on_grid(price, tick)
    shares = _floor_units(exact(size), CENT)
    if shares <= 0:
        raise AmountRefused(f"{side} of {_show(exact(size))} shares is nothing at 2 decimals")
    cash = shares * p  # 2-decimal shares x a grid price: whole base units
    if cash.denominator != 1:  # cannot happen for the venue's ticks; never sign a rounded limit
        raise AmountRefused(f"{side} {_show(exact(size))} @ {_show(p)} has no exact collateral amount")
    collateral = int(cash)
    maker, taker = (collateral, shares) if side == "BUY" else (shares, collateral)
    return OrderAmounts(side, maker, taker, p)


def marketable_amounts(side: Side, price: float | str | Decimal | Fraction,
                       size: float | str | Decimal | Fraction | None, tick: float | str | Decimal | Fraction, *,
                       budget: float | str | Decimal | Fraction | None = None,
                       held: float | str | Decimal | Fraction | None = None) -> OrderAmounts:
    """A FOK/FAK order within P3 (maker 2 decimals, taker 4), never spending more than ``budget``
    (BUY; default ``size x price``; ``size`` None: spend the budget) nor selling more than ``held``
    (SELL). See the module doc for the rounding and the bound on the implied price."""
    p = on_grid(price, tick)
    want = None if size is None else exact(size)
    if side == "BUY":
        if want is None and budget is None:
            raise AmountRefused("a marketable BUY needs a size or a budget")
        worth = None if want is None else want * p  # what the shares cost at the limit
        limit = exact(budget) if budget is not None else worth
        assert limit is not None
        maker, taker = _buy_exact_shares(want, p, limit) if want is not None else (0, 0)
        if taker == 0:  # from the budget: the cent floored, the shares floored at 4 decimals
            maker = _floor_units(limit if worth is None else min(worth, limit), CENT)
            taker = _floor_units(Fraction(maker, UNITS) / p, TAKER_STEP)
    else:
        if want is None:
            raise AmountRefused("a marketable SELL needs a size")
        have = want if held is None else min(want, exact(held))
        maker = _floor_units(have, CENT)
        taker = _floor_units(Fraction(maker, UNITS) * p, TAKER_STEP)
    if maker <= 0 or taker <= 0:
        shown = "budget " + _show(exact(budget)) if want is None and budget is not None else _show(want or Fraction(0))
        raise AmountRefused(f"marketable {side} of {shown} @ {_show(p)} rounds to nothing "
                            "(the venue takes 2 decimals of maker amount and 4 of taker amount)")
    return OrderAmounts(side, maker, taker, p)


def _buy_exact_shares(want: Fraction, p: Fraction, limit: Fraction) -> tuple[int, int]:
    """(maker, taker) buying exactly ``want`` shares with the collateral rounded up to the cent, when
    that fits: shares at 4 decimals, collateral within ``limit``, and the implied price below the
    next point of the finest grid (0.0001) so the order can never match an ask above its limit.
    (0, 0) when it does not fit."""
    shares = want * UNITS
    if want <= 0 or shares.denominator != 1 or int(shares) % TAKER_STEP:
        return 0, 0
    cash = _ceil_units(want * p, CENT)
    if Fraction(cash, UNITS) > limit or Fraction(cash, int(shares)) >= p + TICKS[-1]:
        return 0, 0
    return cash, int(shares)


def check_minimum(amounts: OrderAmounts, order_type: str, min_size: float | str | Decimal | Fraction) -> None:
    """P2, before signing: a GTC/GTD order needs the market's minimum size in shares (it may rest);
    a FOK/FAK order needs $1 of collateral."""
    if order_type in MARKETABLE_TYPES:
        if amounts.collateral < MIN_MARKETABLE_UNITS:
            raise AmountRefused(f"marketable {amounts.side} for ${_show(Fraction(amounts.collateral, UNITS))} is "
                                "under the venue's $1 minimum for marketable orders")
        return
    minimum = exact(min_size)
    if Fraction(amounts.shares, UNITS) < minimum:
        raise AmountRefused(f"{amounts.side} of {_show(Fraction(amounts.shares, UNITS))} shares is under this "
                            f"market's minimum order size {_show(minimum)}")


def _show(value: Fraction) -> str:
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text or "0"
