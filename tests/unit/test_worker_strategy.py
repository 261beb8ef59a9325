from __future__ import annotations

import pytest

from services.maker_worker.executor import fill_from_response, tick_str
from services.maker_worker.strategy import EntryStrategy, round_to_tick, shares
from shared.config import ExecutionSection, MakerStrategySection
from shared.ticks import Tick


def tick(bid: float | None, ask: float | None, tick_size: float = 0.01, stale: bool = False) -> Tick:
    return Tick("t", 1, bid, ask, 10, 10, None, tick_size, 0, 0, stale)


def strategy(**over: object) -> EntryStrategy:
    return EntryStrategy(MakerStrategySection(**over), ExecutionSection())  # type: ignore[arg-type]


def test_buys_once_at_the_ask_inside_the_band() -> None:
    s = strategy(order_size=10, min_price=0.1, buy_price_threshold=0.6)
    intent = s.on_tick(tick(0.49, 0.5), position=0)
    assert intent is not None
    assert (intent.side, intent.price, intent.size) == ("BUY", 0.5, 10)
    assert s.on_tick(tick(0.49, 0.5), position=10) is None


@pytest.mark.parametrize("ask", [0.05, 0.61, None])
def test_no_buy_outside_the_band_or_without_an_ask(ask: float | None) -> None:
    assert strategy(min_price=0.1, buy_price_threshold=0.6).on_tick(tick(0.04, ask), 0) is None


def test_no_buy_on_a_stale_tick_or_below_the_minimum_quote() -> None:
    assert strategy().on_tick(tick(0.4, 0.5, stale=True), 0) is None
    assert strategy(order_size=1, min_quote_amount=1.0).on_tick(tick(0.4, 0.5), 0) is None


def test_exit_concedes_per_attempt_when_aggressive_but_not_below_the_floor() -> None:
    s = EntryStrategy(MakerStrategySection(), ExecutionSection(exit_sell_mode="aggressive",
                                                               price_tolerance_step=0.02, exit_floor_price=0.44))
    first = s.exit_order(tick(0.48, 0.5), position=10.009, attempt=0)
    assert first is not None
    assert (first.side, first.price, first.size) == ("SELL", 0.48, 10.0)
    third = s.exit_order(tick(0.48, 0.5), position=10, attempt=2)
    assert third is not None
    assert third.price == 0.44
    assert s.exit_order(tick(0.48, 0.5), position=0.001, attempt=0) is None


def test_conservative_exit_holds_the_bid_and_no_bid_means_the_floor() -> None:
    s = EntryStrategy(MakerStrategySection(), ExecutionSection(exit_sell_mode="conservative", exit_floor_price=0.05))
    held = s.exit_order(tick(0.48, 0.5), 5, attempt=3)
    assert held is not None
    assert held.price == 0.48
    floor = s.exit_order(tick(None, 0.5), 5, attempt=0)
    assert floor is not None
    assert floor.price == 0.05


def test_rounding_helpers() -> None:
    assert round_to_tick(0.4849, 0.01, down=True) == 0.48
    assert round_to_tick(0.4801, 0.01, down=False) == 0.49
    assert round_to_tick(0.48, 0.01, down=False) == 0.48
    assert round_to_tick(0.1234, 0.001, down=True) == 0.123
    assert shares(10.019) == 10.01
    assert tick_str(0.01) == "0.01"
    assert tick_str(0.001) == "0.001"
    assert tick_str(0.0025) == "0.0025"


def test_fill_amounts_follow_the_side() -> None:
    assert fill_from_response("BUY", {"makingAmount": "5", "takingAmount": "10"}) == (10.0, 0.5)
    assert fill_from_response("SELL", {"makingAmount": "10", "takingAmount": "4.8"}) == (10.0, 0.48)
    assert fill_from_response("BUY", {"makingAmount": "", "takingAmount": "0"}) == (0.0, 0.0)
