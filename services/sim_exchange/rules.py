"""The venue's order rules as pure functions (docs/venue.md P1-P8): each returns what it derived or
raises :class:`OrderError` with the venue's text.

The sim stands in for the venue, so it checks what a client built with arithmetic of its own:
6-decimal integer amounts and exact fractions, never floats, and nothing from ``shared/venue``
(an independent implementation is the cross-check of the client's amount code).

The rules, as enforced (docs/venue.md P-rules say where each comes from):

* FOK/FAK (P3): maker amount at most 2 decimals, taker amount at most 4, whatever the tick. The
  price is the amounts' ratio (collateral / shares), any value in (0, 1]; it is the order's limit.
* GTC/GTD (P1, P4): shares at most 2 decimals, collateral at most the tick's amount decimals, and
  collateral / shares exactly on the tick grid, within [tick, 1 - tick].
* Minimum size (P2): an order that rests (GTC/GTD not crossing) needs the market's own minimum in
  shares; a marketable one (FOK/FAK, or a crossing GTC/GTD) needs $1 of collateral.
* Post-only (P5): GTC/GTD only; a crossing post-only order is refused.
* GTD expiry (P7): at least a minute ahead.
* Balance (P8): what the order can spend (BUY: collateral plus the worst taker fee; SELL: shares)
  against the settled balance less what open orders and unsettled trades hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

UNIT_DECIMALS = 6
UNITS = 10**UNIT_DECIMALS
MARKET_TYPES = ("FOK", "FAK")
RESTING_TYPES = ("GTC", "GTD")
ORDER_TYPES = RESTING_TYPES + MARKET_TYPES
MARKET_MAKER_DECIMALS = 2
MARKET_TAKER_DECIMALS = 4
LIMIT_SIZE_DECIMALS = 2
MIN_MARKETABLE = Fraction(1)  # $1 of collateral
GTD_THRESHOLD_S = 60  # a GTD order must live at least this long past now


class OrderError(Exception):
    """An order was refused; ``str(exc)`` is the exchange's error text."""


def decimals(units: int) -> int:
    """How many decimals a 6-decimal base-unit amount has (4_554_000 is 4.554: 3)."""
    places = UNIT_DECIMALS
    while places > 0 and units % 10 == 0:
        units //= 10
        places -= 1
    return places


def tick_fraction(tick: float) -> Fraction:
    return Fraction(f"{tick:.6f}")


def amount_decimals(tick: float) -> int:
    """The collateral decimals a limit order may carry: the tick's price decimals plus the 2 of the size."""
    return decimals(int(tick_fraction(tick) * UNITS)) + LIMIT_SIZE_DECIMALS


def show(value: Fraction | float) -> str:
    """A number as the venue's texts print it (no float noise, no trailing zeros)."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class Amounts:
    """A signed order's amounts in base units. BUY: maker = collateral, taker = shares; SELL: the reverse."""

    side: str
    maker: int
    taker: int

    @property
    def shares(self) -> int:
        return self.taker if self.side == "BUY" else self.maker

    @property
    def collateral(self) -> int:
        return self.maker if self.side == "BUY" else self.taker

    @property
    def price(self) -> Fraction:
        return Fraction(self.collateral, self.shares)

    @property
    def size(self) -> Fraction:
        return Fraction(self.shares, UNITS)


def check_precision(order_type: str, amounts: Amounts, tick: float) -> None:
    """P3 for FOK/FAK, P4 for GTC/GTD."""
    side = amounts.side.lower()
    if order_type in MARKET_TYPES:
        if decimals(amounts.maker) > MARKET_MAKER_DECIMALS or decimals(amounts.taker) > MARKET_TAKER_DECIMALS:
            raise OrderError(f"invalid amounts, the market {side} orders maker amount supports a max accuracy of "
                             f"{MARKET_MAKER_DECIMALS} decimals, taker amount a max of {MARKET_TAKER_DECIMALS} decimals")
        return
    cash_places = amount_decimals(tick)
    if decimals(amounts.shares) > LIMIT_SIZE_DECIMALS or decimals(amounts.collateral) > cash_places:
        maker, taker = (cash_places, LIMIT_SIZE_DECIMALS) if amounts.side == "BUY" else (LIMIT_SIZE_DECIMALS,
                                                                                           cash_places)
        raise OrderError(f"invalid amounts, the {side} orders maker amount supports a max accuracy of {maker} "
                         f"decimals, taker amount a max of {taker} decimals")


def check_price(order_id: str, order_type: str, amounts: Amounts, tick: float) -> Fraction:
    """The order's limit price (collateral / shares): on the tick grid for GTC/GTD (P1), in (0, 1] for FOK/FAK."""
    price = amounts.price
    if order_type in MARKET_TYPES:
        ok = 0 < price <= 1
    else:
        t = tick_fraction(tick)
        ok = (price / t).denominator == 1 and t <= price <= 1 - t
    if not ok:
        raise OrderError(f"order {order_id} is invalid. Price ({show(price)}) breaks minimum tick size rule: "
                         f"{show(tick)}")
    return price


def check_post_only(order_type: str, post_only: bool, crosses: bool) -> None:
    """P5. The text for a post-only FOK/FAK is the sim's (the venue's is not known)."""
    if not post_only:
        return
    if order_type not in RESTING_TYPES:
        raise OrderError("invalid post-only order: post-only orders must be GTC or GTD")
    if crosses:
        raise OrderError("invalid post-only order: order crosses book")


def check_min_size(order_id: str, order_type: str, amounts: Amounts, min_size: float, crosses: bool) -> None:
    """P2: a resting order needs the market's minimum in shares, a marketable one $1."""
    if order_type in MARKET_TYPES or crosses:
        notional = Fraction(amounts.collateral, UNITS)
        if notional < MIN_MARKETABLE:
            raise OrderError(f"invalid amount for a marketable {amounts.side} order (${float(notional):.2f}), "
                             f"min size: $1")
    elif amounts.size < Fraction(f"{min_size:.6f}"):
        raise OrderError(f"order {order_id} is invalid. Size ({show(amounts.size)}) lower than the minimum: "
                         f"{show(min_size)}")


def check_expiration(order_type: str, expiration: int, now: float) -> None:
    """P7: a GTD order's expiration (UTC seconds) must lie beyond the venue's one-minute threshold."""
    if order_type == "GTD" and expiration < now + GTD_THRESHOLD_S:
        raise OrderError("invalid expiration")


def check_balance(side: str, balance: int, reserved: int, amount: int) -> None:
    """P8, all in base units: ``balance`` settled, ``reserved`` by open orders and unsettled trades."""
    if amount <= balance - reserved:
        return
    parts = [f"balance: {balance}"]
    if reserved > 0:
        parts.append(f"sum of matched orders: {reserved}")
    parts.append(f"order amount (inc. fees): {amount}" if side == "BUY" else f"order amount: {amount}")
    raise OrderError("not enough balance / allowance: the balance is not enough -> " + ", ".join(parts))


def check_allowance(allowance: int, amount: int) -> None:
    """The allowance half of P8. The text is the sim's: the venue's is not public; it keeps the
    substring ``allowance is not enough`` the official SDK's approval recovery looks for."""
    if amount > allowance:
        raise OrderError(f"not enough balance / allowance: the allowance is not enough -> allowance: {allowance}, "
                         f"order amount: {amount}")


def units(value: float) -> int:
    """A float balance in base units (the sim keeps balances as floats rounded to 6 decimals)."""
    return int(round(value * UNITS))
