from __future__ import annotations

import pytest

from services.orchestrator.assignment import pick_taker, pick_worker
from services.orchestrator.decisions import (
    BuyContext,
    TokenView,
    blacklist_reason,
    decide_buy,
    decide_sell,
    market_end_ms,
    market_facts,
    reservation_refused,
)
from services.orchestrator.positions import Book
from services.orchestrator.risk import planned_notional
from services.orchestrator.scheduling import exits_to_run, tokens_to_start
from shared.config import RiskSection
from shared.fleet import WorkerView
from shared.messages import Signal
from shared.venue.errors import UnknownMarketVersion
from shared.venue.ids import v2_condition_id, v2_position_id

RISK = RiskSection(max_notional_per_token=50, max_notional_total=100, max_daily_loss=200)


def ctx(**over: object) -> BuyContext:
    base: dict[str, object] = dict(blacklist_reason=None, handled=False, cooling_down=False, halt="")
    base.update(over)
    return BuyContext(**base)  # type: ignore[arg-type]


def test_fresh_token_is_admitted() -> None:
    assert decide_buy(TokenView("t"), ctx(), RISK).action == "queue"


@pytest.mark.parametrize("state", ["queued", "starting", "running", "exiting"])
def test_active_token_ignores_repeated_buy(state: str) -> None:
    v = decide_buy(TokenView("t", state), ctx(), RISK)
    assert (v.action, v.reason) == ("ignore", f"token already {state}")


@pytest.mark.parametrize(("over", "action", "needle"), [
    ({"halt": "halt"}, "reject", "kill switch"),
    ({"blacklist_reason": "slug x: scam"}, "reject", "blacklisted: slug x: scam"),
    ({"handled": True}, "ignore", "already handled"),
    ({"halt": "reduce_only"}, "reject", "kill switch is reduce_only"),
    ({"cooling_down": True}, "reject", "cooling down"),
    ({"ignored_reason": "session failed: boom"}, "ignore", "ignored: session failed: boom"),
    ({"daily_realized": -200.0}, "reject", "risk.max_daily_loss"),
])
def test_buy_rules_say_why(over: dict[str, object], action: str, needle: str) -> None:
    v = decide_buy(TokenView("t", "done"), ctx(**over), RISK)
    assert v.action == action
    assert needle in v.reason


def test_a_loss_short_of_the_daily_limit_still_admits() -> None:
    assert decide_buy(TokenView("t"), ctx(daily_realized=-199.99), RISK).action == "queue"
    assert decide_buy(TokenView("t"), ctx(daily_realized=+500.0), RISK).action == "queue"


def test_rules_apply_in_order_halt_before_blacklist_before_handled() -> None:
    v = decide_buy(TokenView("t"), ctx(halt="halt", blacklist_reason="x", handled=True), RISK)
    assert v.reason.startswith("kill switch")
    v = decide_buy(TokenView("t"), ctx(blacklist_reason="x", handled=True), RISK)
    assert v.reason == "blacklisted: x"


def test_reservation_refusals_name_the_limit() -> None:
    assert "risk.max_notional_per_token 50.00" in reservation_refused("per_token", 60.0, 0.0, RISK)
    assert reservation_refused("total", 5.0, 96.0, RISK) == \
        "committed 96.00 + 5.00 over risk.max_notional_total 100.00"


def test_planned_notional_is_order_size_at_the_highest_buy_price() -> None:
    params = {"maker_strategy": {"order_size": 10, "max_price": 0.98, "buy_price_threshold": 0.6}}
    assert planned_notional(params) == pytest.approx(6.0)
    params["maker_strategy"]["buy_price_threshold"] = 0.99
    assert planned_notional(params) == pytest.approx(9.8)


@pytest.mark.parametrize(("state", "action"), [
    ("running", "exit"), ("starting", "exit"), ("queued", "dequeue"), ("exiting", "ignore"),
    ("done", "ignore"), ("", "ignore"),
])
def test_sell_decisions(state: str, action: str) -> None:
    assert decide_sell(TokenView("t", state)).action == action


def test_blacklist_matches_config_and_unexpired_runtime_entries_case_insensitively() -> None:
    assert blacklist_reason(["ABC"], [], ("abc",), {}, 0) == "abc is in risk.blacklist_token_keys"
    runtime = {"slug-1": ("manual", 0), "0xdead": ("old", 1_000)}
    assert blacklist_reason(["x", "Slug-1"], [], (), runtime, 5_000) == "slug-1: manual"
    assert blacklist_reason(["0xDEAD"], [], (), runtime, 5_000) is None  # expired
    assert blacklist_reason(["0xdead"], [], (), runtime, 500) == "0xdead: old"
    assert blacklist_reason(["", "y"], [], (), runtime, 0) is None


def test_blacklist_keyword_and_regex_entries_match_title_or_slug() -> None:
    title = ["Will Bitcoin hit $200k by December?", "btc-200k-dec"]
    assert blacklist_reason([], title, ("kw:bitcoin",), {}, 0) == "kw:bitcoin is in risk.blacklist_token_keys"
    assert blacklist_reason([], title, ("kw:ethereum",), {}, 0) is None
    runtime = {r"re:\$\d+k": ("no price ladders", 0)}
    assert blacklist_reason([], title, (), runtime, 0) == r"re:\$\d+k: no price ladders"
    # keyword entries never match identifiers by accident, and a bad regex matches only itself
    assert blacklist_reason(["kw:bitcoin"], [], (), {"kw:": ("empty", 0)}, 0) is None
    assert blacklist_reason([], ["a (b"], ("re:(b",), {}, 0) == "re:(b is in risk.blacklist_token_keys"


def test_source_account_is_a_blacklist_key() -> None:
    assert blacklist_reason(["tok", "0xWHALE"], [], ("0xwhale",), {}, 0) == "0xwhale is in risk.blacklist_token_keys"
    runtime = {"0xWhale": ("stopped following", 0)}
    assert blacklist_reason(["tok", "0xwhale"], [], (), runtime, 0) == "0xWhale: stopped following"


def test_pick_worker_prefers_least_loaded_live_worker_with_room() -> None:
    workers = [
        WorkerView("a", True, 10, 5),
        WorkerView("b", True, 10, 2),
        WorkerView("c", False, 10, 0),  # dead
        WorkerView("d", True, 10, 0, draining=True),
        WorkerView("e", True, 2, 2),  # full
        WorkerView("f", True, 10, 0, ready=False),  # still opening its venue account
    ]
    assert pick_worker(workers) == "b"
    assert pick_worker(workers, exclude=frozenset({"b"})) == "a"
    assert pick_worker([WorkerView("c", False, 1, 0)]) is None


def test_a_hand_back_goes_to_another_worker_first_and_may_stay_with_a_live_sender() -> None:
    lone = [WorkerView("a", True, 1, 1)]  # full with the very token it hands back
    assert pick_taker(lone, "a", may_keep=True) == "a"
    assert pick_taker(lone, "a", may_keep=False) is None  # a dead worker's token: never back to it
    assert pick_taker([*lone, WorkerView("b", True, 5, 4)], "a", may_keep=True) == "b"
    assert pick_taker([WorkerView("a", True, 5, 1, draining=True)], "a", may_keep=True) is None
    assert pick_taker([WorkerView("a", False, 5, 1)], "a", may_keep=True) is None


def test_scheduler_fills_free_slots_oldest_first() -> None:
    queued = [("t3", 30), ("t1", 10), ("t2", 20)]
    assert tokens_to_start(queued, active=0, max_concurrent=2, last_start_ms=0, now_ms=100,
                           start_cooldown_sec=0) == ["t1", "t2"]
    assert tokens_to_start(queued, active=2, max_concurrent=2, last_start_ms=0, now_ms=100,
                           start_cooldown_sec=0) == []


def test_queued_exits_run_oldest_first_within_the_exit_limit() -> None:
    waiting = [("b", 20), ("a", 10), ("c", 30)]
    assert exits_to_run(waiting, exiting=1, max_concurrent_exits=3) == ["a", "b"]
    assert exits_to_run(waiting, exiting=3, max_concurrent_exits=3) == []
    assert exits_to_run(waiting, exiting=5, max_concurrent_exits=3) == []


def test_scheduler_spaces_starts_by_the_start_cooldown() -> None:
    queued = [("t1", 10), ("t2", 20)]
    assert tokens_to_start(queued, 0, 5, last_start_ms=1_000, now_ms=1_500, start_cooldown_sec=1) == []
    assert tokens_to_start(queued, 0, 5, last_start_ms=1_000, now_ms=2_000, start_cooldown_sec=1) == ["t1"]


def test_fills_track_position_average_cost_and_realised_pnl() -> None:
    b = Book()
    b.apply("BUY", 0.40, 10, 0.0)
    assert (b.position, b.avg_cost, b.exposure) == (10.0, pytest.approx(0.4), pytest.approx(4.0))
    b.apply("BUY", 0.60, 10, 0.0)
    assert b.avg_cost == pytest.approx(0.5)
    assert b.exposure == pytest.approx(10.0)
    realized = b.apply("SELL", 0.70, 20, 0.1)
    assert b.position == 0.0
    assert realized == b.realized == pytest.approx(20 * 0.2 - 0.1)
    assert b.exposure == 0.0


def test_market_end_from_gamma_iso_dates() -> None:
    assert market_end_ms("2026-11-30T12:00:00Z") == 1_796_040_000_000
    assert market_end_ms("2026-11-30T12:00:00") == 1_796_040_000_000  # naive = UTC
    assert market_end_ms("2026-11-30T13:00:00+01:00") == 1_796_040_000_000
    assert market_end_ms("") is None
    assert market_end_ms("next tuesday") is None


V1_TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def sig(token: str, **over: object) -> Signal:
    return Signal(id="s", ts_event=1, ts_init=1, producer="p", side="BUY", token_id=token, account="", size=0,
                  price=0.5, source="screen", **over)  # type: ignore[arg-type]


def test_market_facts_carry_the_system_minimum_size_neg_risk_and_condition() -> None:
    cid = v2_condition_id(1, b"\x07" * 16)
    v2 = market_facts(sig(v2_position_id(cid, 0), market_version="v2", min_order_size=15.0, neg_risk=False,
                          condition_id=cid))
    assert v2 == {"market_version": "v2", "min_order_size": 15.0, "neg_risk": False, "condition_id": cid}
    v1 = market_facts(sig(V1_TOKEN, market_version="v1", neg_risk=True, condition_id="0xab"))
    assert v1 == {"market_version": "v1", "neg_risk": True, "condition_id": "0xab"}  # min size unknown: not said
    # a signal that does not know its market's version (no metadata, or a version-1 entry): v1
    assert market_facts(sig("1234567890"))["market_version"] == "v1"
    # the taker fee schedule, when the signal knew it (unknown: not said, the worker asks the venue)
    fees = market_facts(sig(V1_TOKEN, market_version="v1", fee_rate=0.07, fee_exponent=2.0))
    assert (fees["fee_rate"], fees["fee_exponent"]) == (0.07, 2.0)
    assert "fee_rate" not in v1


@pytest.mark.parametrize(("token", "version"), [
    (V1_TOKEN, "v3"),  # a version polyfleet does not know
    (V1_TOKEN, "v2"),  # a v2 market whose id is shaped like a v1 token id
    (v2_position_id(v2_condition_id(1, b"\x01"), 1), "v1"),
])
def test_market_facts_refuse_what_would_be_signed_for_the_wrong_exchange(token: str, version: str) -> None:
    with pytest.raises(UnknownMarketVersion, match="fix:"):
        market_facts(sig(token, market_version=version))
