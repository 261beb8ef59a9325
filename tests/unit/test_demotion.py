"""Auto-demotion's rules (docs/copytrading.md "Auto-demotion"), pure: each rule pauses only when its
history is there and its threshold is crossed; the config refuses rules that make no sense; the
scorecard keeps each copy's PnL in queue order for the PnL rule; ``pf:leaders:paused`` entries."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import ConfigError, DemotionSection, ScorecardSection, load_settings
from shared.demotion import demotion_reason, pause_entry, paused_leaders
from shared.scorecard import Flags, LeaderCard, Spread, scorecards

A = "0x" + "a" * 40


def leader(pnl: tuple[float, ...] = (), slip: Spread | None = None, mm: bool = False, hf: bool = False) -> LeaderCard:
    return LeaderCard(A, True, copy_pnl=list(pnl), slippage_bps=slip or Spread(),
                      flags=Flags(market_maker=mm, two_sided_trades=4 if mm else 0, high_frequency=hf,
                                  busiest_hour=90 if hf else 3))


PNL = DemotionSection(pnl_floor_usd=-10, pnl_last_copies=3)
SLIP = DemotionSection(max_median_slippage_bps=200, slippage_min_copies=5)
FLAGS = DemotionSection(flags=("market_maker", "high_frequency"))


@pytest.mark.parametrize(("card", "rules", "expected"), [
    # PnL: the sum of the newest pnl_last_copies copies against the floor
    (leader(pnl=(50, -4, -4, -4)), PNL, "copied PnL -12.00 USD over the last 3 copies is below pnl_floor_usd -10.00"),
    (leader(pnl=(-50, -3, -3, -3)), PNL, None),  # -9 over the last 3: an old loss does not count
    (leader(pnl=(-5, -5, 0)), PNL, None),  # exactly the floor is not below it
    (leader(pnl=(-30, -30)), PNL, None),  # 2 copies < pnl_last_copies: not enough history
    (leader(), PNL, None),  # a leader with no history is never demoted
    # slippage: the median over at least slippage_min_copies copies against the ceiling
    (leader(slip=Spread(5, 250.0, 900.0)), SLIP, "median entry slippage 250 bps over 5 copies is above "
                                                 "max_median_slippage_bps 200"),
    (leader(slip=Spread(5, 200.0, 900.0)), SLIP, None),  # at the ceiling
    (leader(slip=Spread(4, 900.0, 900.0)), SLIP, None),  # too few copies to judge
    # flags: only those listed
    (leader(mm=True), FLAGS, "flagged market maker (4 two-sided trades)"),
    (leader(hf=True), FLAGS, "flagged high frequency (90 trades in one hour)"),
    (leader(hf=True), DemotionSection(flags=("market_maker",)), None),
    (leader(mm=True, hf=True, pnl=(-99,) * 20, slip=Spread(50, 999.0, 999.0)), DemotionSection(), None),  # all off
])
def test_each_rule_pauses_only_past_its_threshold_with_its_history(card: LeaderCard, rules: DemotionSection,
                                                                   expected: str | None) -> None:
    assert demotion_reason(card, rules) == expected


def test_the_first_broken_rule_is_the_reason() -> None:
    rules = DemotionSection(pnl_floor_usd=0, pnl_last_copies=1, flags=("market_maker",))
    assert demotion_reason(leader(pnl=(-1,), mm=True), rules).startswith("copied PnL")  # type: ignore[union-attr]
    assert demotion_reason(leader(pnl=(1,), mm=True), rules) == "flagged market maker (4 two-sided trades)"


def test_scorecard_keeps_each_copys_pnl_oldest_first_and_out_of_the_json() -> None:
    tokens = {"t2": {"account": A, "queued_at": "200", "position": "0", "realized_pnl": "-3"},
              "t1": {"account": A, "queued_at": "100", "position": "10", "avg_cost": "0.5", "realized_pnl": "1"},
              "t3": {"account": A, "queued_at": "300", "position": "0", "realized_pnl": "2"}}
    [card] = scorecards([A], [], [], tokens, [], {"t1": 0.6}, ScorecardSection())
    assert card.copy_pnl == pytest.approx([1 + 10 * 0.1, -3, 2])
    assert "copy_pnl" not in card.to_json()


def test_paused_entries_round_trip_and_a_hand_written_one_still_pauses() -> None:
    raw = {A.upper().replace("0X", "0x"): pause_entry("bad copies", 5, "auto-demotion"), "0xb": "by hand"}
    assert paused_leaders(raw) == {A: {"reason": "bad copies", "ts": 5, "by": "auto-demotion"},
                                   "0xb": {"reason": "by hand", "ts": 0, "by": ""}}


@pytest.mark.parametrize(("yaml", "key"), [
    ("pnl_last_copies: 0", "pnl_last_copies"),
    ("max_median_slippage_bps: 0", "max_median_slippage_bps"),
    ("slippage_min_copies: 0", "slippage_min_copies"),
    ("flags: [whale]", "flags"),
    ("flags: [market_maker, market_maker]", "flags"),
    ("check_interval_sec: 0", "check_interval_sec"),
    ("read_fills: 0", "read_fills"),
    ("bogus: 1", "bogus"),
])
def test_demotion_rules_that_make_no_sense_are_refused_naming_the_key(tmp_path: Any, yaml: str, key: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"copytrade:\n  demotion:\n    {yaml}\n")
    with pytest.raises(ConfigError, match=f"copytrade.demotion.{key}"):
        load_settings(path)


def test_every_rule_is_off_by_default() -> None:
    assert not DemotionSection().any_rule
    assert DemotionSection(flags=("high_frequency",)).any_rule
