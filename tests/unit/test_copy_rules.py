"""Copy trading rules (docs/copytrading.md): sizing per leader, the slippage/depth guard, exits
that follow the leader's fraction, and the config that refuses rules that make no sense. Pure."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, CopyRules, load_settings
from shared.copy_rules import exit_fraction, guard, size_copy

A = "0x" + "a" * 40
B = "0x" + "b" * 40


def rules(**kw: object) -> CopyRules:
    return CopyRules.model_validate(kw)


# (rules, leader size, leader price, fixed shares, leader open $, leader value, bankroll) -> (shares, notional)
SIZING = [
    # fixed: today's behaviour, maker_strategy.order_size shares whatever the leader traded
    ("fixed", {}, 500, 0.40, 10, 0, None, 0, 10.0, 4.0),
    # percent: 10 % of the leader's 500 x 0.40 = $200 -> $20 -> 50 shares at 0.40
    ("percent", {"sizing": "percent", "percent": 10}, 500, 0.40, 10, 0, None, 0, 50.0, 20.0),
    # proportional: leader's $200 of a $10 000 portfolio = 2 %; 2 % of our $1 500 = $30 -> 75 shares
    ("proportional", {"sizing": "proportional"}, 500, 0.40, 10, 0, 10_000, 1_500, 75.0, 30.0),
    # clamps: percent $20 cut to max 8 -> 20 shares; $0.20 raised to min 2 -> 5 shares
    ("max clamp", {"sizing": "percent", "percent": 10, "max_copy_usd": 8}, 500, 0.40, 10, 0, None, 0, 20.0, 8.0),
    ("min clamp", {"sizing": "percent", "percent": 10, "min_copy_usd": 2}, 5, 0.40, 10, 0, None, 0, 5.0, 2.0),
    # budget: $50 budget with $35 open leaves $15: the $20 copy is cut to $15 -> 37.5 shares
    ("budget cut", {"sizing": "percent", "percent": 10, "budget_usd": 50}, 500, 0.40, 10, 35, None, 0, 37.5, 15.0),
    # rounding: shares go down to 0.01 (never more than the rule allows)
    ("rounding", {"sizing": "percent", "percent": 1}, 333, 0.30, 10, 0, None, 0, 3.33, 0.999),
]


@pytest.mark.parametrize(("name", "kw", "size", "price", "fixed", "open_", "value", "bankroll", "shares", "notional"),
                         SIZING, ids=[row[0] for row in SIZING])
def test_sizing_table(name: str, kw: dict[str, object], size: float, price: float, fixed: float, open_: float,
                      value: float | None, bankroll: float, shares: float, notional: float) -> None:
    got = size_copy(rules(**kw), size, price, fixed, open_, value, bankroll)
    assert got.ok, got.reason
    assert got.shares == pytest.approx(shares)
    assert got.notional == pytest.approx(notional)


SKIPS = [
    # the budget is spent: $48 of $50 open leaves $2, below min_copy_usd 5
    ({"sizing": "percent", "percent": 10, "budget_usd": 50, "min_copy_usd": 5}, 500, 0.40, 48, None, 0,
     "leader budget"),
    ({"sizing": "percent", "percent": 10, "budget_usd": 50}, 500, 0.40, 50, None, 0, "leader budget"),
    ({"sizing": "proportional"}, 500, 0.40, 0, None, 1_000, "portfolio value is unknown"),
    ({"sizing": "percent", "percent": 10}, 500, 0.0, 0, None, 0, "leader price"),
    ({"sizing": "percent", "percent": 0}, 500, 0.40, 0, None, 0, "rounds to 0"),
]


@pytest.mark.parametrize(("kw", "size", "price", "open_", "value", "bankroll", "why"), SKIPS)
def test_sizing_skips(kw: dict[str, object], size: float, price: float, open_: float, value: float | None,
                      bankroll: float, why: str) -> None:
    got = size_copy(rules(**kw), size, price, 10, open_, value, bankroll)
    assert not got.ok
    assert why in got.reason


GUARD = [
    # (asks, leader price, copy shares, limit bps) -> reason fragment, or None (the copy goes ahead)
    ([(0.51, 100)], 0.50, 20, 300, None),  # 200 bps over, inside 300, depth 100 >= 20
    ([(0.52, 100)], 0.50, 20, 300, "slippage guard: best ask 0.5200 is 400 bps"),
    ([(0.50, 5), (0.51, 10), (0.53, 100)], 0.50, 20, 300, "depth guard: 15.00 shares"),  # 0.53 > limit 0.515
    ([(0.50, 5), (0.51, 15)], 0.50, 20, 300, None),  # exactly enough within the limit
    ([], 0.50, 20, 300, "no asks"),
    ([(0.90, 1)], 0.50, 20, 0, None),  # guard off
    (None, 0.50, 20, 300, None),  # no book known: cannot judge
]


@pytest.mark.parametrize(("asks", "price", "shares", "bps", "why"), GUARD)
def test_guard_table(asks: list[tuple[float, float]] | None, price: float, shares: float, bps: float,
                     why: str | None) -> None:
    got = guard(asks, price, shares, bps)
    if why is None:
        assert got is None
    else:
        assert got is not None
        assert why in got


EXITS = [
    # (mode, leader held before, leader sells) -> our fraction (None = full exit)
    ("fraction", 100, 40, 0.4),
    ("fraction", 100, 100, None),  # a full exit stays full
    ("fraction", 100, 99.5, None),  # within FULL_EXIT_AT: full
    ("fraction", 100, 150, None),  # sold more than we saw it hold: full
    ("fraction", 0, 40, None),  # unknown holding: full
    ("full", 100, 40, None),  # exit_mode full: always full
]


@pytest.mark.parametrize(("mode", "held", "sold", "fraction"), EXITS)
def test_exit_fraction_table(mode: str, held: float, sold: float, fraction: float | None) -> None:
    got = exit_fraction(mode, held, sold)
    assert got == (None if fraction is None else pytest.approx(fraction))


BAD = [
    ({"PF__COPYTRADE__COPY__SIZING": "weird"}, "copytrade.copy.sizing"),
    ({"PF__COPYTRADE__COPY__PERCENT": "-5"}, "copytrade.copy.percent: Value error, percent must be >= 0"),
    ({"PF__COPYTRADE__COPY__BUDGET_USD": "3", "PF__COPYTRADE__COPY__MIN_COPY_USD": "5"},
     "budget_usd (3) is below min_copy_usd (5)"),
    ({"PF__COPYTRADE__COPY__MAX_COPY_USD": "3", "PF__COPYTRADE__COPY__MIN_COPY_USD": "5"},
     "max_copy_usd (3) is below min_copy_usd (5)"),
    ({"PF__COPYTRADE__TARGETS": f"[{{account: {A}, copy: {{sizing: percent, percent: -2}}}}]"},
     "copytrade.targets.0.copy.percent: percent must be >= 0"),
    ({"PF__COPYTRADE__TARGETS": f"[{{account: {A}, copy: {{sizing: bogus}}}}]"}, "copytrade.targets.0.copy.sizing"),
    ({"PF__COPYTRADE__TARGETS": f"[{{account: {A}, copy: {{budget: 5}}}}]"}, "copytrade.targets.0.copy.budget: unknown key"),
    ({"PF__COPYTRADE__COPY__SIZING": "proportional"}, "copytrade.bankroll_usd is not set"),
    ({"PF__COPYTRADE__TARGETS": f"[{{account: {A}, copy: {{sizing: proportional}}}}]"},
     "copytrade.targets.0 (" + A + ") uses proportional sizing but copytrade.bankroll_usd"),
]


@pytest.mark.parametrize(("env", "message"), BAD)
def test_bad_copy_rules_refused_naming_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings("/nonexistent/polyfleet.yaml", env)
    assert message in str(err.value)


def test_per_target_rules_overlay_the_default() -> None:
    env = {"PF__COPYTRADE__COPY__MAX_SLIPPAGE_BPS": "200", "PF__COPYTRADE__BANKROLL_USD": "1000",
           "PF__COPYTRADE__TARGETS": f"[{{account: {A.upper().replace('0X', '0x')}, copy: {{sizing: percent, "
                                     f"percent: 5}}}}, {{account: {B}}}]"}
    cp = load_settings("/nonexistent/polyfleet.yaml", env).copytrade
    a, b = cp.rules_for(A), cp.rules_for(B)
    assert (a.sizing, a.percent, a.max_slippage_bps) == ("percent", 5.0, 200.0)  # override + default
    assert (b.sizing, b.max_slippage_bps, b.exit_mode) == ("fixed", 200.0, "fraction")


def test_a_copy_the_guard_could_not_judge_carries_the_limit_to_the_session() -> None:
    """No fresh book: the orchestrator lets the copy through and the START params carry the leader's
    price and limit, which the session holds its BUYs to (services/maker_worker/copycap.py)."""
    from services.orchestrator.copydesk import CopyDesk, CopyInputs
    from shared.clock import now_ms
    from shared.config import Settings
    from shared.messages import Signal

    settings = Settings.model_validate({"copytrade": {"targets": [{"account": A, "copy": {"max_slippage_bps": 300}}]}})
    sig = Signal(id="s", ts_event=1, ts_init=1, producer="t", side="BUY", token_id="1", account=A, size=100,
                 price=0.50, source="poll")
    unchecked = {"maker_strategy": {"order_size": 10}}
    size, skip = CopyDesk.plan(sig, unchecked, CopyInputs(), settings, now_ms())
    assert skip is None
    assert size.ok
    assert unchecked["copy"]["guard"] == "no book"
    assert (unchecked["copy"]["leader_price"], unchecked["copy"]["max_slippage_bps"]) == (0.50, 300)
    book = {"1": {"ask": "0.51", "ask_size": "100", "bid": "0.49", "bid_size": "100", "ts_recv": str(now_ms())}}
    checked = {"maker_strategy": {"order_size": 10}}
    CopyDesk.plan(sig, checked, CopyInputs(books=book), settings, now_ms())
    assert checked["copy"]["guard"] == "passed"
    assert "leader_price" not in checked["copy"]  # judged against the book: nothing for the session to hold
