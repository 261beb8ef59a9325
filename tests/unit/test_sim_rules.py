"""The strict sim's order rules (services/sim_exchange/rules.py) and per-market rules, pure."""

from __future__ import annotations

import pytest

from services.sim_exchange import rules
from services.sim_exchange.market import MarketSim, on_tick
from services.sim_exchange.market_rules import apply_rules, draw_rules
from services.sim_exchange.rules import Amounts, OrderError

P3 = "invalid amounts, the market {} orders maker amount supports a max accuracy of 2 decimals, taker amount a max of 4"


def test_decimals_of_base_unit_amounts() -> None:
    assert [rules.decimals(u) for u in (10_000_000, 4_554_000, 1_003_200, 1_754_300, 682_650, 1)] == [0, 3, 4, 4, 5, 6]


@pytest.mark.parametrize(("side", "maker", "taker", "why"), [
    ("BUY", 1_003_200, 1_760_000, "$1 at 0.57 as limit maths: 1.76 shares cost 1.0032"),
    ("BUY", 2_358_000, 5_240_000, "an arbitrage leg of 5.24 at 0.45"),
    ("BUY", 9_980_000, 10_131_970, "the SDK's $9.98 at 0.985 on a 0.001 tick: taker with 5 decimals"),
    ("SELL", 5_550_000, 682_650, "SELL 5.55 at 0.123 on a 0.001 tick: collateral with 5 decimals"),
    ("SELL", 5_555_000, 682_000, "shares with 3 decimals"),
])
def test_fok_fak_amounts_beyond_2_and_4_decimals_are_refused(side: str, maker: int, taker: int, why: str) -> None:
    for order_type in ("FOK", "FAK"):
        with pytest.raises(OrderError, match=P3.format(side.lower())):
            rules.check_precision(order_type, Amounts(side, maker, taker), 0.01)


@pytest.mark.parametrize(("side", "maker", "taker", "tick"), [
    ("BUY", 1_000_000, 1_754_300, 0.01),  # $1 at 0.57, market maths
    ("BUY", 12_340_000, 27_422_200, 0.01),
    ("BUY", 9_980_000, 10_131_900, 0.001),  # the same $9.98 with the taker cut to 4 decimals
    ("SELL", 5_550_000, 682_600, 0.001),
])
def test_fok_fak_amounts_within_2_and_4_decimals_pass_whatever_the_tick(side: str, maker: int, taker: int,
                                                                         tick: float) -> None:
    amounts = Amounts(side, maker, taker)
    rules.check_precision("FAK", amounts, tick)
    price = rules.check_price("0x1", "FAK", amounts, tick)  # any ratio in (0, 1]: it is the order's limit
    assert 0 < price <= 1


def test_limit_orders_need_2_decimal_shares_and_the_ticks_collateral_decimals() -> None:
    rules.check_precision("GTC", Amounts("BUY", 4_554_000, 10_120_000), 0.01)  # 10.12 at 0.45
    with pytest.raises(OrderError, match="the buy orders maker amount supports a max accuracy of 4 decimals, "
                                         "taker amount a max of 2 decimals"):
        rules.check_precision("GTC", Amounts("BUY", 4_556_250, 10_125_000), 0.01)  # 10.125 shares
    with pytest.raises(OrderError, match="the sell orders maker amount supports a max accuracy of 2 decimals, "
                                         "taker amount a max of 5 decimals"):
        rules.check_precision("GTD", Amounts("SELL", 10_125_000, 4_556_250), 0.001)
    with pytest.raises(OrderError, match="max accuracy of 4 decimals"):
        rules.check_precision("GTC", Amounts("BUY", 4_554_110, 10_000_000), 0.01)  # collateral 4.55411
    rules.check_precision("GTC", Amounts("BUY", 4_554_110, 10_000_000), 0.001)  # 5 decimals on a 0.001 tick


def test_limit_prices_must_sit_on_the_tick_grid_inside_the_range() -> None:
    assert rules.check_price("0x1", "GTC", Amounts("BUY", 4_500_000, 10_000_000), 0.01) == pytest.approx(0.45)
    with pytest.raises(OrderError, match=r"order 0x1 is invalid. Price \(0.455\) breaks minimum tick size rule: 0.01"):
        rules.check_price("0x1", "GTC", Amounts("BUY", 4_550_000, 10_000_000), 0.01)
    assert rules.check_price("0x1", "GTC", Amounts("BUY", 4_550_000, 10_000_000), 0.001) == pytest.approx(0.455)
    with pytest.raises(OrderError, match=r"Price \(0.99\) breaks minimum tick size rule: 0.1"):
        rules.check_price("0x1", "GTC", Amounts("SELL", 10_000_000, 9_900_000), 0.1)
    with pytest.raises(OrderError, match=r"Price \(1\) breaks"):
        rules.check_price("0x1", "GTC", Amounts("BUY", 10_000_000, 10_000_000), 0.01)  # above 1 - tick


def test_minimum_size_is_the_markets_own_and_marketable_orders_need_a_dollar() -> None:
    resting = Amounts("BUY", 4_000_000, 10_000_000)  # 10 at 0.40
    rules.check_min_size("0x1", "GTC", resting, 5.0, crosses=False)
    with pytest.raises(OrderError, match=r"order 0x1 is invalid. Size \(10\) lower than the minimum: 15"):
        rules.check_min_size("0x1", "GTC", resting, 15.0, crosses=False)
    rules.check_min_size("0x1", "GTC", resting, 15.0, crosses=True)  # marketable: $4 is enough
    small = Amounts("BUY", 990_000, 1_800_000)
    with pytest.raises(OrderError, match=r"invalid amount for a marketable BUY order \(\$0.99\), min size: \$1"):
        rules.check_min_size("0x1", "FAK", small, 5.0, crosses=True)
    rules.check_min_size("0x1", "FAK", Amounts("BUY", 1_000_000, 1_754_300), 5.0, crosses=True)  # 1.75 shares, $1


def test_post_only_orders_rest_or_are_refused() -> None:
    rules.check_post_only("GTC", True, crosses=False)
    rules.check_post_only("FAK", False, crosses=True)
    with pytest.raises(OrderError, match="invalid post-only order: order crosses book"):
        rules.check_post_only("GTD", True, crosses=True)
    with pytest.raises(OrderError, match="post-only orders must be GTC or GTD"):
        rules.check_post_only("FOK", True, crosses=False)


def test_gtd_expiration_needs_the_one_minute_threshold() -> None:
    rules.check_expiration("GTD", 1_000_061, 1_000_000.0)
    rules.check_expiration("GTC", 0, 1_000_000.0)
    with pytest.raises(OrderError, match="invalid expiration"):
        rules.check_expiration("GTD", 1_000_059, 1_000_000.0)


def test_balance_and_allowance_texts_carry_the_amounts() -> None:
    rules.check_balance("BUY", 10_000_000, 6_000_000, 4_000_000)
    with pytest.raises(OrderError) as short:
        rules.check_balance("BUY", 10_000_000, 6_000_000, 4_000_001)
    assert str(short.value) == ("not enough balance / allowance: the balance is not enough -> balance: 10000000, "
                                "sum of matched orders: 6000000, order amount (inc. fees): 4000001")
    with pytest.raises(OrderError) as sell:
        rules.check_balance("SELL", 4_893_500, 0, 5_000_000)
    assert str(sell.value) == ("not enough balance / allowance: the balance is not enough -> balance: 4893500, "
                               "order amount: 5000000")
    rules.check_allowance(5_000_000, 5_000_000)
    with pytest.raises(OrderError, match="not enough balance / allowance: the allowance is not enough"):
        rules.check_allowance(0, 5_000_000)


def test_markets_after_the_first_mix_ticks_minimums_and_delays_per_seed() -> None:
    for seed in range(30):
        drawn = draw_rules(seed, 4, 0.5, 0.5, 0.25, 2.0)
        assert drawn == draw_rules(seed, 4, 0.5, 0.5, 0.25, 2.0)  # deterministic per seed
        assert (drawn[0].tick, drawn[0].min_size, drawn[0].delay_s) == (0.01, 5.0, 0.0)  # the first is plain
        assert {r.tick for r in drawn} == {0.01, 0.001}  # both occur, for any seed
        assert {r.min_size for r in drawn} == {5.0, 15.0}
        assert {r.delay_s for r in drawn} == {0.0, 2.0}
    assert all(r.tick == 0.01 and r.min_size == 5 for r in draw_rules(7, 6, 0.0, 0.0, 0.0, 1.0))
    assert draw_rules(7, 1, 1.0, 1.0, 1.0, 1.0)[0].tick == 0.01


def test_applied_rules_relay_a_market_on_its_new_tick() -> None:
    sim = MarketSim(seed=7, count=3, volatility=0.0)
    drawn = draw_rules(7, 3, 1.0, 1.0, 0.0, 0.0)
    apply_rules(sim.markets, drawn, 7)
    fine = sim.markets[1]
    for book in fine.tokens:
        assert (book.tick, book.min_size) == (0.001, 15.0)
        assert all(on_tick(p, 0.001) for p in [*book.bids, *book.asks])
        assert book.best_ask() - book.best_bid() == pytest.approx(0.002)  # a tick each side of the mid
    assert (sim.markets[0].yes.tick, sim.markets[0].yes.min_size) == (0.01, 5.0)
