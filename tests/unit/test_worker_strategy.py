from __future__ import annotations

from decimal import Decimal

from services.maker_worker.strategy import exit_price, round_to_tick, shares
from services.maker_worker.volatility import VolatilityStrategy
from shared.config import ExecutionSection, MakerStrategySection, RunParamsSection
from shared.venue.orders import fill_of


def test_exit_concedes_per_attempt_when_aggressive_but_not_below_the_floor() -> None:
    x = ExecutionSection(exit_sell_mode="aggressive", price_tolerance_step=0.02, exit_floor_price=0.44)
    assert exit_price(0.48, 0.01, 0, x) == 0.48
    assert exit_price(0.48, 0.01, 1, x) == 0.46
    assert exit_price(0.48, 0.01, 2, x) == 0.44
    assert exit_price(0.48, 0.01, 5, x) == 0.44


def test_conservative_exit_holds_the_bid_and_no_bid_means_the_floor() -> None:
    x = ExecutionSection(exit_sell_mode="conservative", exit_floor_price=0.05)
    assert exit_price(0.48, 0.01, 3, x) == 0.48
    assert exit_price(None, 0.01, 0, x) == 0.05


def test_floor_off_the_grid_rounds_up_never_below_it() -> None:
    x = ExecutionSection(exit_sell_mode="aggressive", price_tolerance_step=0.05, exit_floor_price=0.445)
    assert exit_price(0.46, 0.01, 1, x) == 0.45


def test_exit_intent_sells_the_whole_position_rounded_down_and_nothing_for_dust() -> None:
    s = VolatilityStrategy(MakerStrategySection(), RunParamsSection(),
                           ExecutionSection(exit_sell_mode="aggressive", price_tolerance_step=0.02), 0)
    s.reconcile(10.009, 0, avg_cost=0.5)
    s.request_exit("exit")
    first = s.exit_intent(0.48, 0.01)
    assert first is not None
    assert (first.side, first.price, first.size, first.exit) == ("SELL", 0.48, 10.0, True)
    third = s.exit_intent(0.48, 0.01, attempt=2)
    assert third is not None
    assert third.price == 0.44
    s.reconcile(0.001, 0)
    assert s.exit_intent(0.48, 0.01) is None


def test_rounding_helpers() -> None:
    assert round_to_tick(0.4849, 0.01, down=True) == 0.48
    assert round_to_tick(0.4801, 0.01, down=False) == 0.49
    assert round_to_tick(0.48, 0.01, down=False) == 0.48
    assert round_to_tick(0.1234, 0.001, down=True) == 0.123
    assert shares(10.019) == 10.01


def test_fill_amounts_follow_the_side() -> None:
    assert fill_of("BUY", Decimal("5"), Decimal("10")) == (10.0, 0.5)
    assert fill_of("SELL", Decimal("10"), Decimal("4.8")) == (10.0, 0.48)
    assert fill_of("BUY", Decimal("0"), Decimal("0")) == (0.0, 0.0)
