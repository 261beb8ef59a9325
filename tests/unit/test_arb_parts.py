"""Catalogue from Gamma events, episode de-duplication, risk limits (pure parts of arb_scanner)."""

from __future__ import annotations

import json

import pytest

from services.arb_scanner import catalogue, risk
from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.detect import Evaluation, Kind, Verdict
from services.arb_scanner.tracker import Tracker

ALL = set(Kind)


def market(i: int, neg_risk: bool = False, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": str(i), "question": f"Q{i}?", "conditionId": f"0x{i:064x}", "slug": f"q{i}",
        "endDate": "2030-01-01T00:00:00Z", "outcomes": json.dumps(["Yes", "No"]),
        "clobTokenIds": json.dumps([f"{i}1", f"{i}2"]), "active": True, "closed": False, "acceptingOrders": True,
        "negRisk": neg_risk, "orderPriceMinTickSize": 0.01, "orderMinSize": 5, "liquidityNum": 100.0,
        "feesEnabled": True, "feeSchedule": {"rate": 0.04, "exponent": 1, "takerOnly": True, "rebateRate": 0.25},
    }
    row.update(over)
    return row


def test_catalogue_from_events_binary_and_negrisk() -> None:
    rows = [
        {"id": "1", "slug": "one", "title": "One", "negRisk": False, "markets": [market(1)]},
        {"id": "2", "slug": "two", "title": "Who?", "negRisk": True, "negRiskMarketID": "0xnr",
         "markets": [market(2, True), market(3, True), market(4, True)]},
        {"id": "3", "slug": "aug", "title": "Aug", "negRisk": True, "negRiskAugmented": True,
         "markets": [market(5, True), market(6, True)]},
        {"id": "4", "slug": "closed", "title": "C", "negRisk": True,
         "markets": [market(7, True), market(8, True, closed=True)]},
    ]
    sets, skipped = catalogue.build(rows, ALL)
    by_id = {s.id: s for s in sets}
    one = by_id[f"0x{1:064x}"]
    assert one.kinds == (Kind.BUY_BOTH, Kind.SPLIT_SELL)
    assert one.tokens == ("11", "12")
    assert one.fees[0].rate == 0.04
    assert one.end_date == "2030-01-01T00:00:00Z"
    group = by_id["0xnr"]
    assert group.kinds == (Kind.NEGRISK_BUY_ALL, Kind.NEGRISK_SELL_ALL)
    assert group.tokens == ("21", "31", "41")  # the YES of every outcome
    assert len(group.condition_ids) == 3
    assert "augmented" in " ".join(skipped)  # outcomes may be added: not a complete set
    assert "not every outcome" in " ".join(skipped)
    assert f"0x{8:064x}" not in by_id  # closed market
    assert ArbSet.from_json(group.to_json()) == group
    # a token is in its own market's set and in its event's set (at its outcome's index)
    assert sorted((x.id, i) for x, i in catalogue.index(sets)["31"]) == [(f"0x{3:064x}", 0), ("0xnr", 1)]
    only_binary, _ = catalogue.build(rows, {Kind.BUY_BOTH})
    assert all(s.kinds == (Kind.BUY_BOTH,) for s in only_binary)
    no_fee, _ = catalogue.build([{"id": "9", "markets": [market(9, feesEnabled=False)]}], ALL)
    assert no_fee[0].fees[0].rate == 0.0


def ev(verdict: Verdict, edge: float = 0.05, size: float = 50, depth_known: bool = True) -> Evaluation:
    return Evaluation(Kind.BUY_BOTH, verdict, ("a", "b"), (0.45, 0.5), 0.95, 0.0, edge, size=size,
                      depth_known=depth_known)


def test_tracker_emits_on_appear_material_change_and_disappear() -> None:
    t = Tracker(edge_step=0.002, size_step=0.2)
    first = t.observe("m", ev(Verdict.OPPORTUNITY, depth_known=False), 1)
    assert first is not None
    assert first.status == "open"
    assert t.observe("m", ev(Verdict.OPPORTUNITY, depth_known=False), 2) is None  # same: not news
    assert t.observe("m", ev(Verdict.OPPORTUNITY, edge=0.051, depth_known=False), 3) is None  # < edge_step
    sized = t.observe("m", ev(Verdict.OPPORTUNITY), 4)  # the full book confirmed the size
    assert sized is not None
    assert sized.status == "update"
    assert sized.opp_id == first.opp_id
    bigger = t.observe("m", ev(Verdict.OPPORTUNITY, size=61), 5)
    assert bigger is not None
    assert bigger.status == "update"
    assert t.observe("m", ev(Verdict.OPPORTUNITY, size=65), 6) is None  # 65 vs 61: < 20%
    near = t.observe("m", ev(Verdict.NEAR_MISS, edge=0.01, size=0), 7)
    assert near is not None
    assert near.status == "update"
    gone = t.observe("m", ev(Verdict.NONE), 8)
    assert gone is not None
    assert gone.status == "close"
    assert t.observe("m", ev(Verdict.NONE), 9) is None
    again = t.observe("m", ev(Verdict.OPPORTUNITY), 10)
    assert again is not None
    assert again.opp_id != first.opp_id  # a new episode


LIMITS = risk.Limits(max_notional_per_market=100, max_notional_total=500, max_trades_per_minute=6,
                     max_daily_loss=50)


@pytest.mark.parametrize(("state", "allowed", "room", "why"), [
    (risk.RiskState(0, 0, 0, 0.0), True, 100, ""),
    (risk.RiskState(30, 460, 0, 0.0), True, 40, ""),  # the total binds
    (risk.RiskState(100, 100, 0, 0.0), False, 0, "notional"),
    (risk.RiskState(0, 0, 6, 0.0), False, 0, "last minute"),
    (risk.RiskState(0, 0, 0, -50.0), False, 0, "daily"),
    (risk.RiskState(0, 0, 0, 0.0, halt="reduce_only"), False, 0, "kill switch"),
])
def test_risk_limits(state: risk.RiskState, allowed: bool, room: float, why: str) -> None:
    d = risk.check(LIMITS, state)
    assert d.allowed is allowed
    assert d.room == pytest.approx(room)
    assert why in d.reason
    assert risk.max_sets(40, 0.95) == pytest.approx(42.105, abs=1e-3)
