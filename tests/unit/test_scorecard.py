"""The leader scorecard (docs/copytrading.md "Scorecard"), pure: each metric and each copyability
flag from the rows it is given, and the config that refuses thresholds that make no sense."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import ConfigError, ScorecardSection, load_settings
from shared.messages import AuditEvent, Fill, Signal, TradeStatus
from shared.scorecard import busiest_hour, pnl_curve, reason_class, scorecards, slippage_bps, two_sided_trades

A = "0x" + "a" * 40
B = "0x" + "b" * 40
MIN = 60_000
CFG = ScorecardSection()


def sig(side: str = "BUY", token: str = "t1", at: int = 0, account: str = A, source: str = "poll",
        price: float = 0.5, market: str = "c1", seen: int | None = None, n: int = 0) -> Signal:
    return Signal(id=f"s-{account[-1:]}-{side}-{token}-{at}-{n}", ts_event=at, ts_init=at if seen is None else seen,
                  producer="t", side=side, token_id=token, account=account, size=10, price=price,  # type: ignore[arg-type]
                  source=source, condition_id=market)


def event(kind: str, reason: str = "admitted", account: str = A, **detail: Any) -> AuditEvent:
    return AuditEvent(id=f"e-{kind}-{reason}-{len(detail)}", ts_event=1, ts_init=1, producer="o", kind=kind,
                      reason=reason, detail={"account": account, "source": "poll", **detail})


def fill(token: str, price: float, at: int, side: str = "BUY", trade: str = "", status: str = "CONFIRMED") -> Fill:
    return Fill(id=f"f-{token}-{at}", ts_event=at, ts_init=at, producer="w", token_id=token, epoch=1, worker="w",
                order_id="o", side=side, price=price, size=10, trade_id=trade, status=status)  # type: ignore[arg-type]


def card(signals: list[Signal] = [], events: list[AuditEvent] = [],  # noqa: B006 - read only
         tokens: dict[str, dict[str, str]] | None = None, fills: list[Fill | TradeStatus] = [],  # noqa: B006
         marks: dict[str, float | None] | None = None, cfg: ScorecardSection = CFG, account: str = A) -> Any:
    cards = scorecards([A], signals, events, tokens or {}, fills, marks or {}, cfg)
    return next(c for c in cards if c.account == account.lower())


def test_signals_by_source_count_only_that_leaders_and_never_the_screens() -> None:
    rows = [sig(source="poll"), sig(source="poll", n=1), sig(source="rtds", n=2), sig(account=B),
            sig(account="", source="screen")]
    c = card(rows)
    assert c.signals == {"poll": 2, "rtds": 1}
    assert c.followed
    assert card(rows, account=B).signals == {"poll": 1}
    assert not card(rows, account=B).followed  # named by the rows, not an enabled target


def test_the_leaders_own_volume_and_value() -> None:
    rows = [sig(price=0.5), sig("SELL", price=0.25, n=1), sig(account=B, price=0.9)]  # 10 shares each
    cards = {c.account: c for c in scorecards([A], rows, [], {}, [], {}, CFG, {A: 1234.5})}
    assert (cards[A].leader_volume_usd, cards[A].leader_value_usd) == (pytest.approx(7.5), 1234.5)
    assert (cards[B].leader_volume_usd, cards[B].leader_value_usd) == (pytest.approx(9.0), None)


def test_a_followed_wallet_without_history_gets_an_empty_card() -> None:
    c = card()
    assert (c.signals, c.copies, c.skipped, c.realized_pnl, c.slippage_bps.n, c.delay_ms) == ({}, 0, 0, 0.0, 0, {})


def test_copies_and_skips_with_reasons_counted_per_cause() -> None:
    events = [event("token.queued"), event("token.queued", account=B),
              event("signal.ignored", "slippage guard: best ask 0.5600 is 1200 bps over the leader's 0.5000"),
              event("signal.ignored", "slippage guard: best ask 0.5300 is 600 bps over the leader's 0.5000"),
              event("token.rejected", "notional 12.00 over risk.max_notional_per_token 10.00"),
              event("signal.ignored", "no session to exit", side="SELL"),  # a SELL is no skipped copy
              event("signal.ignored", "already handled", source="screen")]
    c = card(events=events)
    assert (c.copies, c.skipped) == (1, 3)
    assert c.skip_reasons == {"slippage guard": 2, "notional # over risk.max_notional_per_token #": 1}


@pytest.mark.parametrize(("reason", "cls"), [
    ("depth guard: 15.00 shares offered", "depth guard"),
    ("leader budget: open copies $48.00", "leader budget"),
    ("token already running", "token already running"),
    ("", "no reason given"),
])
def test_reason_class(reason: str, cls: str) -> None:
    assert reason_class(reason) == cls


def test_pnl_realised_and_unrealised_from_the_leaders_tokens_only() -> None:
    tokens = {"t1": {"account": A, "position": "10", "avg_cost": "0.40", "realized_pnl": "1.5"},
              "t2": {"account": A, "position": "0", "avg_cost": "0", "realized_pnl": "-0.5"},
              "t3": {"account": B, "position": "5", "avg_cost": "0.2", "realized_pnl": "9"},
              "t4": {"account": "", "source": "screen", "position": "5", "realized_pnl": "7"}}
    c = card(tokens=tokens, marks={"t1": 0.55, "t3": 0.3})
    assert c.realized_pnl == pytest.approx(1.0)
    assert c.unrealized_pnl == pytest.approx(10 * (0.55 - 0.40))
    assert (c.copied_tokens, c.open_copies) == (2, 1)
    assert card(tokens=tokens, marks={}).unrealized_pnl == 0.0  # no book: no mark, nothing unrealised


def test_the_pnl_curve_adds_up_each_copys_pnl_in_the_order_they_were_queued() -> None:
    tokens = {"late": {"account": A, "queued_at": "3000", "realized_pnl": "-0.5"},
              "early": {"account": A, "queued_at": "1000", "realized_pnl": "2"},
              "open": {"account": A, "queued_at": "2000", "position": "10", "avg_cost": "0.40"},
              "other": {"account": B, "queued_at": "1500", "realized_pnl": "9"}}
    c = card(tokens=tokens, marks={"open": 0.50})
    assert c.pnl_curve == [[1000, 2.0], [2000, 3.0], [3000, 2.5]]
    assert c.to_json()["pnl_curve"] == c.pnl_curve
    assert "copy_pnl" not in c.to_json()
    assert card(tokens={}).pnl_curve == []


def test_a_long_pnl_curve_is_thinned_evenly_and_ends_at_the_total() -> None:
    curve = pnl_curve([(t, 1.0) for t in range(1, 131)], most=60)
    assert len(curve) <= 61
    assert curve[0] == [1, 1.0]
    assert curve[-1] == [130, 130.0]
    assert pnl_curve([(5, 1.0), (6, -2.0)], most=60) == [[5, 1.0], [6, -1.0]]


@pytest.mark.parametrize(("leader", "ours", "bps"), [(0.50, 0.51, 200.0), (0.50, 0.49, -200.0), (0.40, 0.40, 0.0)])
def test_slippage_bps_positive_when_we_paid_more(leader: float, ours: float, bps: float) -> None:
    assert slippage_bps(leader, ours) == pytest.approx(bps)


def test_entry_slippage_is_the_first_buy_fill_of_this_copy() -> None:
    tokens = {"t1": {"account": A, "leader_price": "0.50", "queued_at": "100"},
              "t2": {"account": A, "signal_id": "s-a-BUY-t2-0-0", "queued_at": "100"},  # price from the signal
              "t3": {"account": A, "leader_price": "0.50", "queued_at": "100"}}
    fills: list[Fill | TradeStatus] = [
        fill("t1", 0.40, 50),  # before this copy was queued: an earlier admission's
        fill("t1", 0.51, 150), fill("t1", 0.60, 160),  # the first one counts
        fill("t2", 0.30, 150, trade="X"), TradeStatus(id="x", ts_event=1, ts_init=1, producer="w", token_id="t2",
                                                      epoch=1, worker="w", trade_id="X", status="FAILED"),
        fill("t2", 0.44, 170),  # a FAILED trade's fill never was: this is the entry
        fill("t3", 0.55, 150, side="SELL"),  # no BUY: no entry
    ]
    c = card([sig(token="t2", price=0.40)], tokens=tokens, fills=fills)
    assert c.slippage_bps.n == 2
    assert c.slippage_bps.p50 == pytest.approx((200 + 1000) / 2)
    assert c.slippage_bps.max == pytest.approx(1000.0)


def test_detection_delay_per_source_p50_and_max() -> None:
    rows = [sig(at=1000, seen=1500), sig(at=1000, seen=3000, n=1), sig(at=1000, seen=2000, n=2),
            sig(at=1000, seen=1100, source="rtds", n=3), sig(at=0, seen=5, n=4)]  # no leader time: not a delay
    c = card(rows)
    assert (c.delay_ms["poll"].n, c.delay_ms["poll"].p50, c.delay_ms["poll"].max) == (3, 1000.0, 2000.0)
    assert (c.delay_ms["rtds"].p50, c.delay_ms["rtds"].max) == (100.0, 100.0)


# (name, signals, two-sided trades within 10 minutes)
TWO_SIDED = [
    ("buy then sell one token", [sig("BUY", "yes", 0), sig("SELL", "yes", 5 * MIN)], 1),
    ("buy both outcomes", [sig("BUY", "yes", 0), sig("BUY", "no", 5 * MIN)], 1),
    ("too far apart", [sig("BUY", "yes", 0), sig("SELL", "yes", 11 * MIN)], 0),
    ("same side, same token", [sig("BUY", "yes", 0), sig("BUY", "yes", MIN)], 0),
    ("buy yes, sell no: one view", [sig("BUY", "yes", 0), sig("SELL", "no", MIN)], 0),
    ("other markets", [sig("BUY", "yes", 0, market="c1"), sig("SELL", "yes2", MIN, market="c2")], 0),
    ("quoting all day", [sig("BUY" if i % 2 else "SELL", "yes", i * MIN) for i in range(6)], 5),
]


@pytest.mark.parametrize(("name", "rows", "count"), TWO_SIDED, ids=[t[0] for t in TWO_SIDED])
def test_two_sided_trades(name: str, rows: list[Signal], count: int) -> None:
    assert two_sided_trades(rows, 10 * MIN) == count


def test_market_maker_flag_needs_mm_min_pairs() -> None:
    rows = [sig("BUY" if i % 2 else "SELL", "yes", i * MIN) for i in range(4)]  # 3 two-sided trades
    assert card(rows, cfg=ScorecardSection(mm_min_pairs=3)).flags.market_maker
    assert not card(rows, cfg=ScorecardSection(mm_min_pairs=4)).flags.market_maker
    assert not card(rows, cfg=ScorecardSection(mm_window_min=0.5)).flags.market_maker  # 1 minute apart


@pytest.mark.parametrize(("gaps_ms", "busiest"), [([], 0), ([0], 1), ([0, 59 * MIN, 61 * MIN], 2),
                                                  ([0, 60 * MIN], 1), ([i * MIN for i in range(61)], 60)])
def test_busiest_hour(gaps_ms: list[int], busiest: int) -> None:
    assert busiest_hour([sig(at=t, n=i) for i, t in enumerate(gaps_ms)]) == busiest


def test_high_frequency_flag_is_more_than_hf_trades_per_hour() -> None:
    rows = [sig(at=i * 1000, token=f"t{i}", market=f"c{i}", n=i) for i in range(11)]
    assert card(rows, cfg=ScorecardSection(hf_trades_per_hour=10)).flags.high_frequency
    assert not card(rows, cfg=ScorecardSection(hf_trades_per_hour=11)).flags.high_frequency
    assert not card(rows, cfg=ScorecardSection(hf_trades_per_hour=11)).flags.market_maker


@pytest.mark.parametrize(("key", "value"), [("mm_window_min", 0), ("mm_min_pairs", 0), ("hf_trades_per_hour", 0),
                                            ("read_signals", 0), ("read_fills", 2_000_000), ("bogus", 1)])
def test_scorecard_thresholds_that_make_no_sense_are_refused(tmp_path: Any, key: str, value: int) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"copytrade:\n  scorecard:\n    {key}: {value}\n")
    with pytest.raises(ConfigError, match=f"copytrade.scorecard.{key}"):
        load_settings(path)
