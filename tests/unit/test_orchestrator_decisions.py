from __future__ import annotations

import pytest

from services.orchestrator.assignment import WorkerView, pick_worker
from services.orchestrator.decisions import BuyContext, TokenView, blacklist_reason, decide_buy, decide_sell
from services.orchestrator.positions import apply_fill
from services.orchestrator.scheduling import tokens_to_start
from shared.config import RiskSection

RISK = RiskSection(max_notional_per_token=50, max_notional_total=100)


def ctx(**over: object) -> BuyContext:
    base: dict[str, object] = dict(blacklist_reason=None, handled=False, cooling_down=False, halt="",
                                   exposure_total=0.0, notional=5.0)
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
    ({"cooling_down": True}, "reject", "cooling down"),
    ({"notional": 60.0}, "reject", "max_notional_per_token"),
    ({"exposure_total": 96.0}, "reject", "max_notional_total"),
])
def test_buy_rules_say_why(over: dict[str, object], action: str, needle: str) -> None:
    v = decide_buy(TokenView("t", "done"), ctx(**over), RISK)
    assert v.action == action
    assert needle in v.reason


def test_exposure_exactly_at_the_limit_is_admitted() -> None:
    assert decide_buy(TokenView("t"), ctx(exposure_total=95.0, notional=5.0), RISK).action == "queue"


@pytest.mark.parametrize(("state", "action"), [
    ("running", "exit"), ("starting", "exit"), ("queued", "dequeue"), ("exiting", "ignore"),
    ("done", "ignore"), ("", "ignore"),
])
def test_sell_decisions(state: str, action: str) -> None:
    assert decide_sell(TokenView("t", state)).action == action


def test_blacklist_matches_config_and_unexpired_runtime_entries_case_insensitively() -> None:
    assert blacklist_reason(["ABC"], ("abc",), {}, 0) == "abc is in risk.blacklist_token_keys"
    runtime = {"slug-1": ("manual", 0), "0xdead": ("old", 1_000)}
    assert blacklist_reason(["x", "Slug-1"], (), runtime, 5_000) == "slug-1: manual"
    assert blacklist_reason(["0xDEAD"], (), runtime, 5_000) is None  # expired
    assert blacklist_reason(["0xdead"], (), runtime, 500) == "0xdead: old"
    assert blacklist_reason(["", "y"], (), runtime, 0) is None


def test_pick_worker_prefers_least_loaded_live_worker_with_room() -> None:
    workers = [
        WorkerView("a", True, 10, 5),
        WorkerView("b", True, 10, 2),
        WorkerView("c", False, 10, 0),  # dead
        WorkerView("d", True, 10, 0, draining=True),
        WorkerView("e", True, 2, 2),  # full
    ]
    assert pick_worker(workers) == "b"
    assert pick_worker(workers, exclude=frozenset({"b"})) == "a"
    assert pick_worker([WorkerView("c", False, 1, 0)]) is None


def test_scheduler_fills_free_slots_oldest_first() -> None:
    queued = [("t3", 30), ("t1", 10), ("t2", 20)]
    assert tokens_to_start(queued, active=0, max_concurrent=2, last_start_ms=0, now_ms=100,
                           start_cooldown_sec=0) == ["t1", "t2"]
    assert tokens_to_start(queued, active=2, max_concurrent=2, last_start_ms=0, now_ms=100,
                           start_cooldown_sec=0) == []


def test_scheduler_spaces_starts_by_the_start_cooldown() -> None:
    queued = [("t1", 10), ("t2", 20)]
    assert tokens_to_start(queued, 0, 5, last_start_ms=1_000, now_ms=1_500, start_cooldown_sec=1) == []
    assert tokens_to_start(queued, 0, 5, last_start_ms=1_000, now_ms=2_000, start_cooldown_sec=1) == ["t1"]


def test_fills_track_position_average_cost_and_realised_pnl() -> None:
    f, delta = apply_fill({}, "BUY", 0.40, 10, 0.0)
    assert (f["position"], f["avg_cost"], delta) == ("10.000000", "0.400000", pytest.approx(4.0))
    f, delta = apply_fill(f, "BUY", 0.60, 10, 0.0)
    assert f["avg_cost"] == "0.500000"
    assert delta == pytest.approx(6.0)
    f, delta = apply_fill(f, "SELL", 0.70, 20, 0.1)
    assert f["position"] == "0.000000"
    assert float(f["realized_pnl"]) == pytest.approx(20 * 0.2 - 0.1)
    assert delta == pytest.approx(-10.0)
