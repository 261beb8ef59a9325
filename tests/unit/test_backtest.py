"""The leader backtest's replay and figures (docs/copytrading.md "Backtest"), pure: a small history
computed by hand, then one rule at a time (sizing, budget, guard, exits, delay, min_size)."""

from __future__ import annotations

import pytest

from shared.backtest import FillModel, Replay, replay
from shared.backtest_report import max_drawdown, report
from shared.config import CopyRules
from shared.venue.data_api import Trade

L = "0x" + "1" * 40
BASE = 1_700_000_000
END = BASE + 10 * 600


def trade(side: str, token: str, size: float, price: float, at: int, market: str = "") -> Trade:
    return Trade(L, side, token, size, price, at, condition_id=market or f"m-{token}", tx_hash=f"0x{at}{token}{side}")  # type: ignore[arg-type]


# The history of the integration test (tests/integration/test_backtest.py), 600 s apart, 60 s delay.
HISTORY = [
    trade("BUY", "A", 400, 0.50, BASE),  # copied: 10 % of $200 = $20 -> 40 shares at 0.505
    trade("SELL", "A", 160, 0.60, BASE + 600),  # 40 % of its 400: we sell 16 at 0.594 (+1.424)
    trade("BUY", "B", 100, 0.20, BASE + 1200),  # copied: $2 -> 10 shares at 0.202
    trade("BUY", "A", 100, 0.62, BASE + 1800),  # skipped: A is copied already
    trade("BUY", "C", 50, 0.40, BASE + 2400),  # skipped: by the time we act C trades at 0.44 (+1 % = 1111 bps)
    trade("SELL", "C", 10, 0.44, BASE + 2402),  # a sell of a token we hold no copy of
    trade("SELL", "B", 100, 0.10, BASE + 3000),  # all of it: a full exit, 10 at 0.099 (-1.03)
    trade("BUY", "D", 200, 0.30, BASE + 3600),  # copied: $6 -> 20 shares at 0.303; its market resolves Yes
    trade("BUY", "E", 20, 0.50, END - 10),  # not detected yet: we would act 50 s after the window's end
]
RULES = CopyRules(sizing="percent", percent=10, max_slippage_bps=300)
MODEL = FillModel(slippage_bps=100, delay_sec=60)


def run(trades: list[Trade] = HISTORY, rules: CopyRules = RULES, model: FillModel = MODEL, **kw: object) -> Replay:
    return replay(trades, rules, model, BASE - 60, END, order_size=lambda t: 10.0, **kw)  # type: ignore[arg-type]


def test_the_small_history_by_hand() -> None:
    rep = run()
    res = report(rep, {"A": 0.55, "D": 1.0}, END, account=L, days=1, model=MODEL, rules=RULES)
    assert res["trades"] == {"replayed": 9, "buys": 6, "sells": 3, "below_min_size": 0}
    assert (res["copies"], res["skipped"]) == (3, 3)
    assert res["skip_reasons"] == {"token already copied": 1, "slippage guard": 1, "not detected yet": 1}
    assert res["exits"] == {"full": 1, "partial": 1, "sells_without_a_copy": 1}
    assert res["invested_usd"] == pytest.approx(20.20 + 2.02 + 6.06)
    assert res["realized_pnl"] == pytest.approx(16 * (0.594 - 0.505) + 10 * (0.099 - 0.202))  # 0.394
    assert res["unrealized_pnl"] == pytest.approx(24 * (0.55 - 0.505) + 20 * (1.0 - 0.303))  # 1.08 + 13.94
    assert res["total_pnl"] == pytest.approx(15.414)
    assert (res["wins"], res["losses"], res["win_rate"]) == (2, 1, pytest.approx(2 / 3))
    # equity: 0, -0.2, 3.704, 3.684, 4.164 (A seen at 0.62), 4.164, 4.164, 3.154 (B out), 3.094 (D in), 15.414
    assert res["max_drawdown_usd"] == pytest.approx(4.164 - 3.094)
    assert (res["open_copies"], res["unmarked"]) == (2, 0)
    a = next(c for c in res["copies_detail"] if c["token_id"] == "A")
    assert (a["shares"], a["held"], a["price"], a["pnl"]) == (40.0, 24.0, pytest.approx(0.505), pytest.approx(2.504))
    assert "60 s after" in res["model"]["text"]
    assert "100 bps" in res["model"]["text"]


def test_an_open_copy_without_a_mark_counts_nothing_and_is_named() -> None:
    res = report(run(), {"A": 0.55}, END, account=L, days=1, model=MODEL, rules=RULES)
    assert res["unmarked"] == 1
    assert res["unrealized_pnl"] == pytest.approx(1.08)
    assert (res["wins"], res["losses"]) == (1, 1)  # D has no PnL to judge


@pytest.mark.parametrize(("rules", "value", "bankroll", "shares"), [
    (CopyRules(), None, 0.0, 10.0),  # fixed: maker_strategy.order_size
    (CopyRules(sizing="percent", percent=5), None, 0.0, 20.0),  # 5 % of $200 = $10
    (CopyRules(sizing="proportional"), 10_000.0, 1_500.0, 60.0),  # 2 % of $1 500 = $30 -> at 0.50
    (CopyRules(sizing="percent", percent=10, max_copy_usd=5), None, 0.0, 10.0),
])
def test_each_sizing_mode_is_todays(rules: CopyRules, value: float | None, bankroll: float, shares: float) -> None:
    rep = run([trade("BUY", "A", 400, 0.50, BASE)], rules, FillModel(0, 0), leader_value=value, bankroll=bankroll)
    assert rep.copies["A"].shares == shares


def test_proportional_without_the_leaders_value_is_skipped() -> None:
    rep = run([trade("BUY", "A", 400, 0.50, BASE)], CopyRules(sizing="proportional"), FillModel(0, 0))
    assert [s.reason for s in rep.skips] == ["proportional sizing: the leader's portfolio value is unknown"]


def test_the_budget_counts_open_copies_and_frees_what_exits() -> None:
    rules = CopyRules(sizing="percent", percent=10, budget_usd=25, min_copy_usd=5)
    trades = [trade("BUY", "A", 400, 0.50, BASE), trade("BUY", "B", 400, 0.50, BASE + 10),  # $20, then $5 left
              trade("BUY", "C", 400, 0.50, BASE + 20),  # nothing left: skipped
              trade("SELL", "A", 400, 0.50, BASE + 30), trade("BUY", "D", 400, 0.50, BASE + 40)]  # A freed: $20
    rep = run(trades, rules, FillModel(0, 0))
    assert {t: c.notional for t, c in rep.copies.items()} == {"A": 20.0, "B": 5.0, "D": 20.0}
    assert [s.reason.split(":")[0] for s in rep.skips] == ["leader budget"]


def test_exits_follow_the_fraction_and_full_mode_exits_in_full() -> None:
    trades = [trade("BUY", "A", 400, 0.50, BASE), trade("SELL", "A", 100, 0.50, BASE + 10),
              trade("SELL", "A", 300, 0.50, BASE + 20)]
    frac = run(trades, CopyRules(sizing="percent", percent=10), FillModel(0, 0))
    assert (frac.exits_partial, frac.exits_full, frac.copies["A"].held) == (1, 1, 0.0)
    full = run(trades[:2], CopyRules(sizing="percent", percent=10, exit_mode="full"), FillModel(0, 0))
    assert (full.exits_partial, full.exits_full, full.copies["A"].held) == (0, 1, 0.0)
    part = run(trades[:2], CopyRules(sizing="percent", percent=10), FillModel(0, 0))
    assert part.copies["A"].held == 30.0  # 25 % of 40 sold
    assert part.copies["A"].kept == pytest.approx(0.75)


def test_below_min_size_trades_are_never_seen() -> None:
    rep = run([trade("BUY", "A", 4, 0.50, BASE), trade("SELL", "A", 4, 0.50, BASE + 10)], min_size=5)
    assert (rep.below_min_size, rep.copies, rep.skips) == (2, {}, [])


def test_the_guard_judges_our_price_against_the_leaders() -> None:
    rep = run([trade("BUY", "A", 400, 0.50, BASE)], CopyRules(sizing="percent", percent=10, max_slippage_bps=50),
              FillModel(100, 0))
    assert rep.skips[0].reason.startswith("slippage guard: best ask 0.5050 is 100 bps over the leader's 0.5000")


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    assert max_drawdown([(0, 0.0), (1, 5.0), (2, 1.0), (3, 7.0), (4, 6.0)]) == 4.0
    assert max_drawdown([(0, 0.0), (1, 1.0)]) == 0.0
