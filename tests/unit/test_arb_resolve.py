"""Sets held to resolution (services/arb_scanner/resolve.py), pure: the CLOB market answer, which
sets are resolved, what they redeem and pay, and the exposure that stays."""

from __future__ import annotations

import pytest

from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.detect import Kind
from services.arb_scanner.resolve import HeldSet, decide, settled_exposure
from shared.venue.clob_market import MarketState, market_state
from shared.venue.fees import FeeSchedule

NO_FEE = FeeSchedule(0.0, 1.0)


def _event() -> ArbSet:
    return ArbSet("0xnr", (Kind.NEGRISK_BUY_ALL,), "who wins", ("y0", "y1", "y2"), (NO_FEE,) * 3, 5.0, 0.01,
                  None, True, ("0xc0", "0xc1", "0xc2"), "0xnr")


def _binary() -> ArbSet:
    return ArbSet("0xb", (Kind.BUY_BOTH,), "yes or no", ("yes", "no"), (NO_FEE,) * 2, 5.0, 0.01, None, False,
                  ("0xb",))


def _clob(cid: str, winner: str | None, tokens: tuple[str, str]) -> dict[str, object]:
    return {"condition_id": cid, "closed": winner is not None,
            "tokens": [{"token_id": t, "outcome": o, "winner": t == winner} for t, o in zip(tokens, ("Yes", "No"),
                                                                                       strict=True)]}


def test_market_state_reads_the_clob_winner_flags() -> None:
    assert market_state(_clob("0xc0", "n0", ("y0", "n0"))) == MarketState("0xc0", True, frozenset({"n0"}))
    assert market_state(_clob("0xc0", None, ("y0", "n0"))) == MarketState("0xc0", False, frozenset())
    assert market_state({"error": "market not found"}) is None
    assert market_state([]) is None


def test_a_negrisk_set_resolves_when_every_outcome_has_a_winner() -> None:
    held = HeldSet.of(_event(), "negrisk_buy_all", 40, 38)
    assert held.condition_ids == ("0xc0", "0xc1", "0xc2")
    assert HeldSet.from_json(held.to_json()) == held
    markets = {"0xc0": market_state(_clob("0xc0", "n0", ("y0", "n0"))),
               "0xc1": market_state(_clob("0xc1", "y1", ("y1", "n1")))}
    assert decide(held, {k: v for k, v in markets.items() if v}) is None  # outcome 2 not reported yet
    markets["0xc2"] = market_state(_clob("0xc2", None, ("y2", "n2")))
    assert decide(held, {k: v for k, v in markets.items() if v}) is None  # open, no winner
    markets["0xc2"] = market_state(_clob("0xc2", "n2", ("y2", "n2")))
    res = decide(held, {k: v for k, v in markets.items() if v})
    assert res is not None
    assert res.winners == ("y1",)
    assert res.payout == 40  # one YES of 40 sets pays $1 each
    assert res.pnl == pytest.approx(2)  # 40 − 38
    # the NegRiskAdapter redeems exactly the YES held in each outcome (none of a NO)
    assert [(r.condition_id, r.amounts) for r in res.redeems] == [(c, (40, 0)) for c in ("0xc0", "0xc1", "0xc2")]
    # after a partial redeem, a retry only does what is left, and the payout is unchanged
    again = decide(held.with_redeemed("0xc0"), {k: v for k, v in markets.items() if v})
    assert again is not None
    assert [r.condition_id for r in again.redeems] == ["0xc1", "0xc2"]
    assert again.payout == 40


def test_a_held_binary_set_pays_one_dollar_whichever_side_wins() -> None:
    held = HeldSet.of(_binary(), "buy_both", 10, 9.7).add(5, 4.8)
    assert (held.sets, held.cost, held.condition_ids) == (15, 14.5, ("0xb", "0xb"))
    for winner in ("yes", "no"):
        res = decide(held, {"0xb": MarketState("0xb", True, frozenset({winner}))})
        assert res is not None
        assert res.payout == 15
        assert res.pnl == pytest.approx(0.5)
        assert [(r.condition_id, r.amounts) for r in res.redeems] == [("0xb", (15, 15))]


def test_a_closed_market_without_a_winner_is_not_resolved() -> None:
    held = HeldSet.of(_binary(), "buy_both", 10, 9.7)
    assert decide(held, {"0xb": MarketState("0xb", True, frozenset())}) is None


def test_exposure_left_after_booking_is_only_the_leftover_legs() -> None:
    assert settled_exposure(38, 38) == 0
    assert settled_exposure(40.5, 38) == pytest.approx(2.5)
    assert settled_exposure(38.0000001, 38) == 0
