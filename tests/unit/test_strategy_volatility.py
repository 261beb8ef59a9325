"""docs/strategy.md section 11: one test per worked example (test_exNN_...), then properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.maker_worker.strategy import OrderIntent
from services.maker_worker.volatility import State, VolatilityStrategy
from shared.config import (
    ConfigError,
    CountdownSection,
    DeadlinePolicySection,
    ExecutionSection,
    MakerStrategySection,
    RunParamsSection,
)
from shared.ticks import Tick

START = int(datetime(2026, 1, 15, 16, 0, tzinfo=UTC).timestamp() * 1000)
BASE: dict[str, Any] = {"drop_window_minutes": 10, "drop_pct": 0.05, "profit_pct": 0.05, "buy_price_threshold": 0.95,
                        "min_price": 0.02, "max_price": 0.98, "order_size": 10, "reject_cooldown_sec": 5}


def make(run: RunParamsSection | None = None, x: ExecutionSection | None = None, start: int = START,
         market_end_ms: int | None = None, **over: Any) -> VolatilityStrategy:
    return VolatilityStrategy(MakerStrategySection(**{**BASE, **over}), run or RunParamsSection(),
                              x or ExecutionSection(), start, market_end_ms)


def tick(bid: float | None, ask: float | None, stale: bool = False) -> Tick:
    return Tick("t", 1, bid, ask, 0.0, 0.0, None, 0.01, 0, 0, stale)


def at(sec: float) -> int:
    return START + int(sec * 1000)


def ask(s: VolatilityStrategy, sec: float, a: float) -> OrderIntent | None:
    return s.on_tick(tick(round(a - 0.01, 2), a), at(sec))


def bid(s: VolatilityStrategy, sec: float, b: float) -> OrderIntent | None:
    return s.on_tick(tick(b, round(b + 0.01, 2)), at(sec))


def long_at(s: VolatilityStrategy, price: float = 0.57, size: float = 10, sec: float = 0) -> None:
    """Put ``s`` in LONG through a real BUY: a drop from ``price / 0.95`` then a full fill."""
    s.reconcile(0, at(sec))
    s.last_ask, s.state = price, State.BUYING
    s.on_fill("BUY", size, price, at(sec))
    assert s.state is State.LONG


def test_ex01_drop_buys_at_the_ask() -> None:
    s = make()
    assert ask(s, 0, 0.60) is None
    assert ask(s, 10, 0.59) is None
    intent = ask(s, 20, 0.57)
    assert intent == OrderIntent("BUY", 0.57, 10, intent.reason if intent else "")
    assert s.state is State.BUYING
    assert s.window_high == 0.60


def test_ex02_no_buy_before_the_drop() -> None:
    s = make()
    assert ask(s, 0, 0.60) is None
    assert ask(s, 1, 0.58) is None
    assert s.state is State.FLAT


def test_ex03_the_window_forgets() -> None:
    s = make()
    ask(s, 0, 0.60)
    assert ask(s, 700, 0.55) is None
    assert s.window_high == 0.55
    intent = ask(s, 710, 0.52)
    assert intent is not None
    assert intent.side == "BUY"
    assert intent.price == 0.52


def test_ex04_absolute_cap() -> None:
    s = make(buy_price_threshold=0.50, drop_pct=0)
    assert ask(s, 0, 0.55) is None
    intent = ask(s, 1, 0.50)
    assert intent is not None
    assert intent.price == 0.50


@pytest.mark.parametrize("price", [0.99, 0.01])
def test_ex05_price_guard(price: float) -> None:
    s = make(drop_pct=0, buy_price_threshold=1.0)
    assert s.on_tick(tick(None, price), at(0)) is None


def test_ex06_awaiting_buy_confirmation() -> None:
    s = make()
    ask(s, 0, 0.60)
    assert ask(s, 20, 0.57) is not None
    assert ask(s, 21, 0.50) is None  # BUYING: no new signal
    s.on_fill("BUY", 10, 0.57, at(22))
    assert s.state is State.LONG
    assert (s.position, s.avg_cost) == (10, 0.57)


def test_ex07_profit_sell_at_the_bid() -> None:
    s = make()
    ask(s, 0, 0.60)
    ask(s, 20, 0.57)
    s.on_fill("BUY", 10, 0.57, at(21))
    assert bid(s, 30, 0.59) is None
    intent = bid(s, 31, 0.60)
    assert intent is not None
    assert (intent.side, intent.price, intent.size, intent.exit) == ("SELL", 0.60, 10, False)
    assert s.state is State.SELLING
    s.on_fill("SELL", 10, 0.60, at(32))
    assert s.state is State.FLAT
    assert s.realized_pnl == pytest.approx(0.30)
    assert s.sells_done == 1


def test_ex08_rollback_on_reject_and_cooldown() -> None:
    s = make()
    ask(s, 0, 0.60)
    assert ask(s, 20, 0.57) is not None
    s.on_reject("BUY", "not enough balance / allowance", at(20))
    assert s.state is State.FLAT
    assert s.last_reject["reason"] == "not enough balance / allowance"
    assert ask(s, 22, 0.57) is None  # cooldown
    assert ask(s, 26, 0.57) is not None
    s.on_fill("BUY", 10, 0.57, at(26))
    assert bid(s, 30, 0.60) is not None
    s.on_reject("SELL", "no orders found to match with FAK order", at(30))
    assert s.state is State.LONG
    assert s.position == 10
    assert s.sells_done == 0


def test_ex09_partial_fills() -> None:
    s = make()
    ask(s, 0, 0.60)
    ask(s, 20, 0.57)
    s.on_fill("BUY", 4, 0.57, at(21), final=True)
    assert s.state is State.LONG
    assert s.position == 4
    intent = bid(s, 30, 0.60)
    assert intent is not None
    assert intent.size == 4
    s.on_fill("SELL", 1.5, 0.60, at(31), final=True)
    assert s.state is State.LONG
    assert s.position == pytest.approx(2.5)
    assert s.sells_done == 1


def test_ex10_incremental_drop() -> None:
    s = make(enable_incremental_drop_pct=True, incremental_drop_pct_step=0.02, incremental_drop_pct_cap=0.08)
    assert s.effective_drop_pct() == pytest.approx(0.05)
    for sells, expected in [(1, 0.07), (2, 0.08), (3, 0.08)]:
        s.sells_done = sells
        assert s.effective_drop_pct() == pytest.approx(expected)
    s.sells_done = 1
    ask(s, 0, 0.60)
    assert ask(s, 1, 0.57) is None
    assert ask(s, 2, 0.56) is None  # 0.56 > 0.558
    assert ask(s, 3, 0.55) is not None


def test_ex10b_a_completed_sell_raises_the_next_threshold() -> None:
    s = make(enable_incremental_drop_pct=True, incremental_drop_pct_step=0.02, incremental_drop_pct_cap=0.08,
             profit_pct=0.01)
    ask(s, 0, 0.60)
    ask(s, 1, 0.57)
    s.on_fill("BUY", 10, 0.57, at(1))
    bid(s, 2, 0.58)
    s.on_fill("SELL", 10, 0.58, at(2))
    assert s.effective_drop_pct() == pytest.approx(0.07)


def test_ex11_duplicate_buy_only_on_a_lower_price() -> None:
    s = make()
    ask(s, 0, 0.60)
    ask(s, 20, 0.57)
    s.on_fill("BUY", 10, 0.57, at(20))
    assert ask(s, 21, 0.55) is None
    intent = ask(s, 22, 0.54)
    assert intent is not None
    assert (intent.side, intent.size) == ("BUY", 10)
    s.on_fill("BUY", 10, 0.54, at(22))
    assert s.avg_cost == pytest.approx(0.555)
    assert s.position == 20

    d = make(disable_duplicate_signal=True)
    ask(d, 0, 0.60)
    ask(d, 20, 0.57)
    d.on_fill("BUY", 10, 0.57, at(20))
    assert ask(d, 21, 0.30) is None


def test_ex12_target_sizing() -> None:
    s = make(order_size_is_target=True)
    assert s.buy_size(0.5) == 10
    s.position = 4
    assert s.buy_size(0.5) == 6
    s.position = 10
    assert s.buy_size(0.5) == 0


def test_ex13_minimum_notional_raises_the_size() -> None:
    s = make(order_size=1, min_quote_amount=1)
    assert s.buy_size(0.40) == 2.5
    assert s.buy_size(0.30) == 3.34


def test_ex14_sell_signals_off() -> None:
    s = make(disable_sell_signals=True)
    ask(s, 0, 0.60)
    ask(s, 20, 0.57)
    s.on_fill("BUY", 10, 0.57, at(20))
    assert bid(s, 30, 0.90) is None


def test_ex15_countdown_turns_sell_only() -> None:
    s = make(countdown=CountdownSection(minutes_before_end=30), market_end_ms=at(3600))
    assert s.sell_only_at_ms == at(1800)
    ask(s, 1700, 0.60)
    assert ask(s, 1799, 0.57) is not None
    s.on_reject("BUY", "x", at(1799))
    s.reject_until_ms["BUY"] = 0
    assert ask(s, 1800, 0.57) is None
    assert s.sell_only
    assert s.sell_only_reason == "countdown"
    s.reconcile(10, at(1801), avg_cost=0.57)
    intent = bid(s, 1802, 0.60)
    assert intent is not None
    assert intent.side == "SELL"


def test_ex16_absolute_time_in_a_zone() -> None:
    s = make(countdown=CountdownSection(absolute_time="12:00", timezone="America/New_York"))
    assert s.sell_only_at_ms == int(datetime(2026, 1, 15, 17, 0, tzinfo=UTC).timestamp() * 1000)
    iso = make(countdown=CountdownSection(absolute_time="2026-01-20 09:30", timezone="America/New_York"))
    assert iso.sell_only_at_ms == int(datetime(2026, 1, 20, 14, 30, tzinfo=UTC).timestamp() * 1000)


def test_ex17_default_deadline_policy() -> None:
    start = int(datetime(2026, 7, 1, 15, 0, tzinfo=UTC).timestamp() * 1000)
    run = RunParamsSection(deadline_policy=DeadlinePolicySection(enabled=True, default_deadline_time="12:59",
                                                                 timezone="America/New_York"))
    s = make(run=run, start=start, countdown=CountdownSection(minutes_before_end=60))
    assert s.deadline_ms == int(datetime(2026, 7, 1, 16, 59, tzinfo=UTC).timestamp() * 1000)
    assert s.sell_only_at_ms == int(datetime(2026, 7, 1, 15, 59, tzinfo=UTC).timestamp() * 1000)


def test_ex18_deadline_liquidates_below_the_entry_with_concessions() -> None:
    run = RunParamsSection(deadline_override_ts=(START + 600_000) // 1000)
    x = ExecutionSection(exit_sell_mode="aggressive", price_tolerance_step=0.01, exit_floor_price=0.48,
                         order_interval_sec=0.5)
    s = make(run=run, x=x)
    long_at(s)
    assert bid(s, 599, 0.50) is None
    intent = bid(s, 600, 0.50)
    assert intent is not None
    assert (intent.side, intent.price, intent.size, intent.exit) == ("SELL", 0.50, 10, True)
    assert s.exiting
    assert s.exit_reason == "deadline"
    s.on_reject("SELL", "no match", at(600))
    second = bid(s, 601, 0.50)
    assert second is not None
    assert second.price == 0.49
    s.on_reject("SELL", "no match", at(601))
    third = s.on_timer(at(602))
    assert third is not None
    assert third.price == 0.48
    s.on_reject("SELL", "no match", at(602))
    fourth = s.on_timer(at(603))
    assert fourth is not None
    assert fourth.price == 0.48
    assert fourth.exit
    s.on_fill("SELL", 10, 0.48, at(603))
    assert s.state is State.FLAT
    assert ask(s, 700, 0.30) is None  # never a BUY once exiting


def test_ex19_deadline_checks_off() -> None:
    run = RunParamsSection(deadline_override_ts=(START + 600_000) // 1000, disable_deadline_checks=True)
    s = make(run=run, countdown=CountdownSection(minutes_before_end=5))
    assert s.deadline_ms is None
    assert s.sell_only_at_ms is None
    long_at(s)
    assert bid(s, 600, 0.50) is None
    assert not s.exiting


def test_ex20_stale_tick_changes_nothing() -> None:
    s = make(drop_pct=0)
    assert s.on_tick(tick(0.49, 0.50, stale=True), at(0)) is None
    assert s.window_high is None
    assert s.state is State.FLAT


def test_ex21_snapshot_round_trip() -> None:
    s = make()
    ask(s, 0, 0.60)
    ask(s, 20, 0.57)
    s.on_fill("BUY", 10, 0.57, at(21))
    snap = json.loads(json.dumps(s.status()))
    r = VolatilityStrategy.restore(snap, MakerStrategySection(**BASE), RunParamsSection(), ExecutionSection())
    assert r.status() == s.status()
    intent = bid(r, 30, 0.60)
    assert intent is not None
    assert (intent.side, intent.price, intent.size) == ("SELL", 0.60, 10)


def test_restore_refuses_an_unknown_snapshot_version() -> None:
    with pytest.raises(ValueError, match="version"):
        VolatilityStrategy.restore({"v": 99}, MakerStrategySection(), RunParamsSection(), ExecutionSection())


def test_reconcile_resolves_awaiting_by_the_venue_position() -> None:
    s = make()
    ask(s, 0, 0.60)
    ask(s, 20, 0.57)
    s.reconcile(10, at(30), avg_cost=0.57)  # the BUY did happen (resume after a crash)
    assert s.state is State.LONG
    assert s.position == 10
    s2 = make()
    ask(s2, 0, 0.60)
    ask(s2, 20, 0.57)
    s2.reconcile(0, at(30))
    assert s2.state is State.FLAT


def test_bad_timezone_and_time_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="countdown.timezone"):
        make(countdown=CountdownSection(absolute_time="12:00", timezone="Mars/Olympus"))
    with pytest.raises(ConfigError, match="absolute_time"):
        make(countdown=CountdownSection(absolute_time="25:99"))
    with pytest.raises(ConfigError, match="default_deadline_time"):
        make(run=RunParamsSection(deadline_policy=DeadlinePolicySection(enabled=True, default_deadline_time="x")))


def test_dust_counts_as_flat() -> None:
    s = make(min_market_order_size=1.0)
    s.reconcile(0.5, at(0), avg_cost=0.5)
    assert s.state is State.FLAT


# --- properties -------------------------------------------------------------------------------

prices = st.integers(min_value=1, max_value=99).map(lambda c: c / 100)
steps = st.lists(st.tuples(st.integers(0, 120), prices, st.integers(0, 2), st.integers(0, 3)), min_size=1,
                 max_size=80)


@settings(max_examples=150, deadline=None)
@given(path=steps, drop=st.sampled_from([0.0, 0.01, 0.05]), profit=st.sampled_from([0.0, 0.02, 0.1]),
       cap=st.sampled_from([0.3, 0.6, 0.95]), dup=st.booleans(), target=st.booleans())
def test_property_guards_hold_on_any_path(path: list[tuple[int, float, int, int]], drop: float, profit: float,
                                          cap: float, dup: bool, target: bool) -> None:
    """Never a BUY outside [min_price, min(max_price, cap)]; never a non-exit SELL below the entry;
    never a signal while awaiting; the position never goes negative."""
    s = make(drop_pct=drop, profit_pct=profit, buy_price_threshold=cap, min_price=0.05, max_price=0.9,
             disable_duplicate_signal=dup, order_size_is_target=target)
    now = 0
    for gap, mid, spread, outcome in path:
        now += gap
        was_awaiting = s.awaiting
        entry = s.avg_cost
        intent = s.on_tick(tick(round(max(mid - spread / 100, 0.01), 2), round(min(mid + spread / 100, 0.99), 2)),
                           at(now))
        if was_awaiting:
            assert intent is None
        if intent is not None and intent.side == "BUY":
            assert 0.05 <= intent.price <= min(0.9, cap) + 1e-9
            assert intent.size > 0
        if intent is not None and intent.side == "SELL":
            assert intent.exit or intent.price >= entry - 1e-9
            assert intent.size <= s.position + 1e-9
        if intent is not None:  # the venue answers: full fill, half fill, or reject
            if outcome == 0:
                s.on_reject(intent.side, "refused", at(now))
            else:
                size = intent.size if outcome >= 2 else round(intent.size / 2, 2)
                s.on_fill(intent.side, size, intent.price, at(now))
        assert s.position >= 0
        assert s.state in (State.FLAT, State.LONG, State.BUYING, State.SELLING)


def test_partial_exit_sells_the_leaders_fraction_and_keeps_trading() -> None:
    """docs/copytrading.md "Exits follow the leader": EXIT with fraction 0.4 sells 40 % of ours at
    the bid (a liquidation price), not counted as a profit sell; the rest stays LONG, not exiting."""
    s = make()
    s.reconcile(50.0, at(0), avg_cost=0.50)
    intent = s.trim_intent(0.4, 0.47, at(1), "followed wallet sold 40%")
    assert intent == OrderIntent("SELL", 0.47, 20.0, "followed wallet sold 40%", exit=True)
    assert s.state is State.SELLING
    assert s.trim_intent(0.4, 0.47, at(2), "again") is None  # one order at a time
    s.on_fill("SELL", 20.0, 0.47, at(3))
    assert (s.state, s.position, s.exiting, s.sells_done) == (State.LONG, 30.0, False, 0)
    s.request_exit("exit")
    assert s.trim_intent(0.5, 0.47, at(4), "late") is None  # exiting: the liquidation sells everything
