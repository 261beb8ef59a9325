"""Exact order amounts (shared/venue/amounts.py; docs/venue.md P1-P4): the issue's cases come out
within the venue's precision, and for any order the budget, the holding and the price bound hold."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.venue.amounts import (
    TICKS,
    UNITS,
    AmountRefused,
    OrderAmounts,
    check_minimum,
    limit_amounts,
    marketable_amounts,
)


def decimals(units: int) -> int:
    """Decimals of a base-unit amount (the venue's view: 4_554_000 is 4.554, 3 decimals)."""
    places = 6
    while places and units % 10 == 0:
        units //= 10
        places -= 1
    return places


def assert_marketable_precision(a: OrderAmounts) -> None:
    assert decimals(a.maker) <= 2, a
    assert decimals(a.taker) <= 4, a


# --- the cases ----------------------------------------------------------------------------

def test_one_dollar_buy_at_057_is_two_and_four_decimals() -> None:
    a = marketable_amounts("BUY", 0.57, None, 0.01, budget=1)
    assert (a.maker, a.taker) == (1_000_000, 1_754_300)
    # The worker's form: 1.76 shares (the $1 raise) at 0.57 is worth 1.0032; the budget is that.
    b = marketable_amounts("BUY", 0.57, 1.76, 0.01)
    assert (b.maker, b.taker) == (1_000_000, 1_754_300)
    assert_marketable_precision(b)
    check_minimum(b, "FAK", 5)


def test_arbitrage_leg_of_1234_at_045_stays_within_its_budget() -> None:
    a = marketable_amounts("BUY", 0.45, 12.34, 0.01)  # worth 5.553: refused by the venue as it stands
    assert (a.maker, a.taker) == (5_550_000, 12_333_300)
    assert_marketable_precision(a)
    assert a.collateral <= 5_553_000


def test_sell_on_a_0001_tick_market_has_four_taker_decimals() -> None:
    a = marketable_amounts("SELL", 0.123, 5.55, 0.001)  # 0.68265: five decimals as limit maths gives
    assert (a.maker, a.taker) == (5_550_000, 682_600)
    assert_marketable_precision(a)


def test_exact_shares_when_the_cent_fits_the_budget_and_the_price_bound() -> None:
    a = marketable_amounts("BUY", 0.48, 10, 0.01)
    assert (a.maker, a.taker) == (4_800_000, 10_000_000)
    # 1000 shares at 0.4567: 456.70 exactly.
    b = marketable_amounts("BUY", 0.4567, 1000, 0.0001)
    assert (b.maker, b.taker) == (456_700_000, 1_000_000_000)
    # 300.01 shares at 0.45 is worth 135.0045; a budget of 135.01 buys them all (the cent rounded up)
    c = marketable_amounts("BUY", 0.45, 300.01, 0.01, budget=135.01)
    assert (c.maker, c.taker) == (135_010_000, 300_010_000)
    assert c.implied_price - Fraction("0.45") < Fraction("0.0001")
    # ... but 12.34 shares would move the implied price a whole 0.0005 past the limit: budget mode
    d = marketable_amounts("BUY", 0.45, 12.34, 0.01, budget=6)
    assert (d.maker, d.taker) == (5_550_000, 12_333_300)


def test_sell_never_more_than_held() -> None:
    a = marketable_amounts("SELL", 0.5, 10, 0.01, held=7.239)
    assert a.maker == 7_230_000


def test_limit_amounts_are_the_price_exactly() -> None:
    a = limit_amounts("BUY", 0.45, 10.129, 0.01)  # sdk-wire §4.2's captured example
    assert (a.maker, a.taker) == (4_554_000, 10_120_000)
    s = limit_amounts("SELL", 0.123, 5.55, 0.001)
    assert (s.maker, s.taker) == (5_550_000, 682_650)
    assert s.implied_price == Fraction("0.123")


@pytest.mark.parametrize(("price", "tick", "why"), [
    (0.455, 0.01, "not on the tick grid"),
    (0.0, 0.01, "outside"),
    (1.0, 0.01, "outside"),
    (0.5, 0.02, "tick size 0.02"),
])
def test_prices_off_the_grid_are_refused(price: float, tick: float, why: str) -> None:
    with pytest.raises(AmountRefused, match=why):
        limit_amounts("BUY", price, 5, tick)
    with pytest.raises(AmountRefused, match=why):
        marketable_amounts("BUY", price, 5, tick)


def test_a_float_price_a_hair_off_the_grid_is_the_grid_point() -> None:
    a = limit_amounts("BUY", 0.1 + 0.2, 10, 0.01)  # 0.30000000000000004
    assert a.price == Fraction("0.3")


def test_minimums_refuse_before_sending() -> None:
    with pytest.raises(AmountRefused, match="minimum order size 15"):
        check_minimum(limit_amounts("BUY", 0.5, 10, 0.01), "GTC", 15)
    check_minimum(limit_amounts("BUY", 0.5, 15, 0.01), "GTC", 15)
    with pytest.raises(AmountRefused, match=r"\$1 minimum"):
        check_minimum(marketable_amounts("BUY", 0.5, 1.99, 0.01), "FAK", 5)
    with pytest.raises(AmountRefused, match=r"\$1 minimum"):
        check_minimum(marketable_amounts("SELL", 0.5, 1.99, 0.01), "FOK", 5)
    check_minimum(marketable_amounts("SELL", 0.5, 2, 0.01), "FOK", 5)


def test_nothing_left_after_rounding_is_refused() -> None:
    with pytest.raises(AmountRefused, match="rounds to nothing"):
        marketable_amounts("SELL", 0.5, 0.004, 0.01)
    with pytest.raises(AmountRefused, match="rounds to nothing"):
        marketable_amounts("BUY", 0.5, None, 0.01, budget=0.009)
    with pytest.raises(AmountRefused, match="nothing at 2 decimals"):
        limit_amounts("BUY", 0.5, 0.009, 0.01)


# --- properties -----------------------------------------------------------------------------------

def grid_prices(tick: Fraction) -> st.SearchStrategy[Fraction]:
    return st.integers(1, int(1 / tick) - 1).map(lambda k: k * tick)


@st.composite
def marketable_case(draw: st.DrawFn) -> tuple[str, Fraction, Fraction, Fraction, Fraction | None]:
    tick = draw(st.sampled_from(TICKS))
    price = draw(grid_prices(tick))
    side = draw(st.sampled_from(["BUY", "SELL"]))
    size = Fraction(draw(st.integers(1, 10**8)), 10**draw(st.integers(0, 6)))
    extra = draw(st.one_of(st.none(), st.fractions(min_value=0, max_value=10, max_denominator=10**6)))
    return side, price, size, tick, extra


@settings(max_examples=2000, deadline=None)
@given(marketable_case())
def test_marketable_amounts_keep_precision_budget_holding_and_price_bound(
        case: tuple[str, Fraction, Fraction, Fraction, Fraction | None]) -> None:
    side, price, size, tick, extra = case
    if side == "BUY":
        budget = None if extra is None else size * price + extra * Fraction(1, 100)
        try:
            a = marketable_amounts("BUY", price, size, tick, budget=budget)
        except AmountRefused:
            assert size * price < Fraction(1, 100)  # less than a cent's worth: nothing to send
            return
        assert_marketable_precision(a)
        assert a.collateral <= (size * price if budget is None else budget) * UNITS  # never over budget
        excess = a.implied_price - price
        assert excess >= 0  # never below the limit: it still matches an ask at the limit
        if a.taker == size * UNITS:
            assert excess < Fraction(1, 10_000)
        else:
            assert excess < price * Fraction(1, 10_000) / (Fraction(a.taker, UNITS))
        if a.collateral >= UNITS:  # every order the $1 minimum lets through
            assert excess < Fraction(1, 10_000)
    else:
        held = None if extra is None else extra * size / 10
        try:
            a = marketable_amounts("SELL", price, size, tick, held=held)
        except AmountRefused:
            return
        assert_marketable_precision(a)
        assert a.maker <= (size if held is None else min(size, held)) * UNITS  # never more than held
        worse = price - a.implied_price
        assert 0 <= worse < Fraction(1, 10_000) / Fraction(a.maker, UNITS)
        if a.collateral >= UNITS:
            assert worse < Fraction(1, 10_000)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(TICKS).flatmap(lambda t: st.tuples(st.just(t), grid_prices(t))),
       st.integers(1, 10**7), st.sampled_from(["BUY", "SELL"]))
def test_limit_amounts_are_two_decimal_shares_at_the_exact_price(tick_price: tuple[Fraction, Fraction], cents: int,
                                                                 side: str) -> None:
    tick, price = tick_price
    a = limit_amounts(side, price, Fraction(cents, 100), tick)  # type: ignore[arg-type]
    assert a.shares == cents * UNITS // 100
    assert decimals(a.shares) <= 2
    assert a.implied_price == price
