"""Detection math, hand-computed (docs/arbitrage.md has the formulas)."""

from __future__ import annotations

import pytest

from services.arb_scanner.detect import (
    FeeSchedule,
    Kind,
    Leg,
    Params,
    ScoreInputs,
    Verdict,
    evaluate,
    floor_size,
    quick_edge,
    score,
    walk,
    whole_cent_size,
)

NOFEE = Params(min_edge=0.01, haircut=0.0)


def leg(token: str, *levels: tuple[float, float], rate: float = 0.0, min_size: float = 5.0) -> Leg:
    return Leg(token, tuple(levels), FeeSchedule(rate), min_size)


def test_fee_is_size_rate_p_one_minus_p_rounded_to_5_decimals() -> None:
    f = FeeSchedule(rate=0.07)
    assert f.fee(100, 0.5) == pytest.approx(1.75)  # the reference's worked example
    assert f.per_share(0.4) == pytest.approx(0.07 * 0.4 * 0.6)
    assert FeeSchedule(0.04).fee(0.001, 0.5) == 0.00001  # 0.00001 exactly: kept
    assert FeeSchedule(0.04).fee(0.0001, 0.5) == 0.0  # under the rounding: free
    assert FeeSchedule(0.25, exponent=2).per_share(0.5) == pytest.approx(0.25 * 0.0625)


def test_buy_both_walks_levels_until_the_marginal_set_stops_paying() -> None:
    legs = (leg("Y", (0.45, 100), (0.47, 100)), leg("N", (0.50, 50), (0.52, 200)))
    # 50 sets at 0.45+0.50 (edge .05), 50 at 0.45+0.52 (.03); 0.47+0.52 leaves exactly .01: stop.
    w = walk(legs, buys=True, min_edge=0.01)
    assert w.size == pytest.approx(100)
    assert w.cost == pytest.approx(50 * 0.95 + 50 * 0.97)
    assert w.worst == (0.45, 0.52)
    assert w.levels_used == 2
    ev = evaluate(Kind.BUY_BOTH, legs, NOFEE)
    assert ev.verdict is Verdict.OPPORTUNITY
    assert ev.size == 100
    assert ev.profit == pytest.approx(4.0)
    assert ev.edge == pytest.approx(0.04)
    assert ev.top_edge == pytest.approx(0.05)
    assert ev.limits == (0.45, 0.52)


def test_haircut_takes_the_best_levels_first() -> None:
    legs = (leg("Y", (0.45, 100), (0.47, 100)), leg("N", (0.50, 50), (0.52, 200)))
    ev = evaluate(Kind.BUY_BOTH, legs, Params(min_edge=0.01, haircut=0.2))
    assert ev.depth == pytest.approx(100)
    assert ev.size == 80  # 100 x (1 - 0.2)
    assert ev.cost == pytest.approx(50 * 0.95 + 30 * 0.97)  # 47.5 + 29.1
    assert ev.profit == pytest.approx(80 - 76.6)


def test_cap_limits_the_size() -> None:
    legs = (leg("Y", (0.45, 100)), leg("N", (0.50, 100)))
    assert evaluate(Kind.BUY_BOTH, legs, Params(min_edge=0.01, haircut=0, max_size=33.337)).size == 33.33


def test_fees_from_each_market_schedule() -> None:
    # YES 0.40 at rate 0.04: 0.04*0.4*0.6 = 0.0096 a share; NO 0.55: 0.04*0.55*0.45 = 0.0099.
    legs = (leg("Y", (0.40, 100), rate=0.04), leg("N", (0.55, 100), rate=0.04))
    ev = evaluate(Kind.BUY_BOTH, legs, NOFEE)
    assert ev.top_fees == pytest.approx(0.0195)
    assert ev.top_edge == pytest.approx(1 - 0.95 - 0.0195)
    assert ev.fees == pytest.approx(0.96 + 0.99)
    assert ev.profit == pytest.approx(100 - 95 - 1.95)


def test_a_sum_exactly_at_the_threshold_is_not_an_opportunity() -> None:
    at = (leg("Y", (0.48, 100)), leg("N", (0.50, 100)))  # 1 - 0.98 == min_edge 0.02
    ev = evaluate(Kind.BUY_BOTH, at, Params(min_edge=0.02, haircut=0))
    assert ev.verdict is Verdict.NEAR_MISS
    assert ev.size == 0
    below = (leg("Y", (0.48, 100)), leg("N", (0.49, 100)))
    assert evaluate(Kind.BUY_BOTH, below, Params(min_edge=0.02, haircut=0)).verdict is Verdict.OPPORTUNITY


def test_fees_exactly_at_the_threshold_are_not_an_opportunity() -> None:
    # YES 0.50 at rate 0.04 pays 0.01 a share; 1 - 0.97 - 0.01 = 0.02 = min_edge.
    legs = (leg("Y", (0.50, 100), rate=0.04), leg("N", (0.47, 100)))
    ev = evaluate(Kind.BUY_BOTH, legs, Params(min_edge=0.02, haircut=0))
    assert ev.top_edge == pytest.approx(0.02)
    assert ev.verdict is Verdict.NEAR_MISS


def test_far_from_the_threshold_is_nothing() -> None:
    legs = (leg("Y", (0.52, 100)), leg("N", (0.50, 100)))
    ev = evaluate(Kind.BUY_BOTH, legs, Params(min_edge=0.01, near_miss_band=0.01))
    assert ev.verdict is Verdict.NONE
    assert ev.top_edge == pytest.approx(-0.02)


def test_near_miss_band() -> None:
    legs = (leg("Y", (0.50, 100)), leg("N", (0.495, 100)))  # edge .005, min .01: .005 short
    assert evaluate(Kind.BUY_BOTH, legs, Params(min_edge=0.01, near_miss_band=0.01)).verdict is Verdict.NEAR_MISS
    assert evaluate(Kind.BUY_BOTH, legs, Params(min_edge=0.01, near_miss_band=0.004)).verdict is Verdict.NONE


def test_split_and_sell_walks_bids() -> None:
    legs = (leg("Y", (0.55, 30), (0.54, 100)), leg("N", (0.48, 100)))
    # 30 sets at .55+.48 (edge .03), 70 at .54+.48 (.02); NO's bids are gone after 100.
    ev = evaluate(Kind.SPLIT_SELL, legs, NOFEE)
    assert ev.verdict is Verdict.OPPORTUNITY
    assert ev.size == 100
    assert ev.cost == pytest.approx(30 * 1.03 + 70 * 1.02)  # proceeds 102.3
    assert ev.profit == pytest.approx(2.3)
    assert ev.limits == (0.54, 0.48)
    at = (leg("Y", (0.55, 100)), leg("N", (0.46, 100)))  # 1.01 - 1 == min_edge
    assert evaluate(Kind.SPLIT_SELL, at, NOFEE).verdict is Verdict.NEAR_MISS


def test_split_and_sell_pays_fees_out_of_proceeds() -> None:
    legs = (leg("Y", (0.60, 100), rate=0.05), leg("N", (0.45, 100), rate=0.05))
    # fees .05*.6*.4 = .012 and .05*.45*.55 = .012375: edge 1.05 - .024375 - 1 = .025625
    ev = evaluate(Kind.SPLIT_SELL, legs, NOFEE)
    assert ev.top_edge == pytest.approx(0.025625)
    assert ev.profit == pytest.approx(105 - 1.2 - 1.2375 - 100)


def test_negrisk_yes_asks_of_all_outcomes_below_one() -> None:
    legs = (leg("A", (0.30, 10), (0.31, 40)), leg("B", (0.33, 50)), leg("C", (0.32, 50)))
    ev = evaluate(Kind.NEGRISK_BUY_ALL, legs, NOFEE)
    assert ev.top_sum == pytest.approx(0.95)
    # 10 sets at .95 (edge .05), then 40 at .96 (.04); A is empty after 50.
    assert ev.size == 50
    assert ev.profit == pytest.approx(10 * 0.05 + 40 * 0.04)
    assert ev.limits == (0.31, 0.33, 0.32)


def test_negrisk_sell_all_when_yes_bids_sum_above_one() -> None:
    legs = (leg("A", (0.40, 20)), leg("B", (0.35, 20)), leg("C", (0.30, 20)))
    ev = evaluate(Kind.NEGRISK_SELL_ALL, legs, NOFEE)
    assert ev.verdict is Verdict.OPPORTUNITY
    assert ev.profit == pytest.approx(20 * 0.05)
    missing = (leg("A", (0.40, 20)), Leg("B", ()), leg("C", (0.30, 20)))
    assert evaluate(Kind.NEGRISK_SELL_ALL, missing, NOFEE).verdict is Verdict.NONE


def test_venue_minimum_notional_per_leg() -> None:
    legs = (leg("Y", (0.05, 10)), leg("N", (0.90, 10)))  # YES leg: 10 x 0.05 = $0.50 < $1
    ev = evaluate(Kind.BUY_BOTH, legs, NOFEE)
    assert ev.verdict is Verdict.NEAR_MISS
    assert "$1" in ev.reason
    ok = (leg("Y", (0.05, 20)), leg("N", (0.90, 20)))  # 20 x 0.05 = $1.00 exactly: allowed
    assert evaluate(Kind.BUY_BOTH, ok, NOFEE).verdict is Verdict.OPPORTUNITY


def test_venue_minimum_order_size() -> None:
    legs = (leg("Y", (0.40, 4)), leg("N", (0.50, 100)))
    ev = evaluate(Kind.BUY_BOTH, legs, NOFEE)
    assert ev.verdict is Verdict.NEAR_MISS
    assert "minimum order size 5" in ev.reason
    # with a haircut the walked 10 shrink to 4.5: not executable either
    legs10 = (leg("Y", (0.40, 10)), leg("N", (0.50, 100)))
    assert evaluate(Kind.BUY_BOTH, legs10, Params(min_edge=0.01, haircut=0.55)).verdict is Verdict.NEAR_MISS


def test_quick_edge_and_floor() -> None:
    assert quick_edge(Kind.BUY_BOTH, [0.45, 0.50], (FeeSchedule(), FeeSchedule())) == pytest.approx(0.05)
    assert quick_edge(Kind.SPLIT_SELL, [0.55, 0.50], (FeeSchedule(), FeeSchedule())) == pytest.approx(0.05)
    assert quick_edge(Kind.BUY_BOTH, [0.45, None], (FeeSchedule(), FeeSchedule())) is None
    assert floor_size(12.349) == 12.34
    assert floor_size(0.29999999999) == 0.3  # float noise from the walk does not lose a cent


def test_score() -> None:
    base = ScoreInputs(profit=4.0, edge=0.04, size=100, top_size=50, seconds_to_end=10 * 86_400,
                       held_to_resolution=False)
    assert score(base) == pytest.approx(4.0 * 0.75)
    held = ScoreInputs(profit=4.0, edge=0.04, size=100, top_size=100, seconds_to_end=30 * 86_400,
                       held_to_resolution=True)
    assert score(held) == pytest.approx(2.0)
    ending = ScoreInputs(profit=4.0, edge=0.04, size=100, top_size=100, seconds_to_end=600,
                         held_to_resolution=False)
    assert score(ending) == pytest.approx(2.0)
    assert score(ScoreInputs(0.0, 0.0, 0.0, 0.0, None, False)) == 0.0


def test_buy_sets_are_sized_so_every_leg_costs_whole_cents() -> None:
    # a marketable BUY pays at most 2-decimal collateral (P3): 5.24 x 0.47 = 2.4628 cannot be paid,
    # so the legs would buy different shares; 5 x 0.47 and 5 x 0.50 can
    assert whole_cent_size(5.24, (0.47, 0.50)) == 5.0
    assert whole_cent_size(5.24, (0.50, 0.50)) == 5.24  # 0.5 takes any even hundredth
    assert whole_cent_size(48.0, (0.47, 0.50)) == 48.0
    assert whole_cent_size(12.34, (0.473,)) == 10.0  # a 0.001 tick: multiples of 10 shares
    assert whole_cent_size(40.0, (0.30, 0.33, 0.32)) == 40.0
    assert whole_cent_size(0.5, (0.47,)) == 0.0  # none: nothing is bought
