"""The collector's pure parts beyond trades: paging windows, request budget, live-data frames and
watchdog, Gamma parsing, the market screen, target diffs on reload, latency histograms. No Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.signal_collector.budget import TokenBucket
from services.signal_collector.metrics import LatencyHistogram
from services.signal_collector.recent import RecentIds
from services.signal_collector.screen import market_verdict, screen
from services.signal_collector.signals import screen_signal, signal_id, to_signal
from services.signal_collector.targets import diff_targets
from services.signal_collector.watchdog import Action, SilenceWatchdog
from shared.config import ScreenSection, Target
from shared.messages import decode
from shared.venue.data_api import parse_trade
from shared.venue.gamma import GammaMarket, TokenMeta, parse_market, parse_markets, token_meta
from shared.venue.live_data import BadFrame, parse_frame, subscribe_frame
from shared.venue.trades_feed import MAX_OFFSET, Rejected, next_window

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "polymarket"
WALLET = "0x6af75d4e4aaf700450efbac3708cce1665810ff1"
FED_YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
FED_NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def rtds_frame() -> dict[str, object]:
    frame: dict[str, object] = json.loads((FIXTURES / "rtds_activity_trades.json").read_text())
    return frame


def gamma_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads((FIXTURES / "gamma_markets.json").read_text())
    return rows


# ------------------------------------------------------------------------------ paging windows

def test_paging_moves_the_window_end_down_before_the_offset_cap() -> None:
    rows = [{"timestamp": 1000 - i // 7} for i in range(MAX_OFFSET)]
    assert next_window(0, 500, None, rows[:500]) == (500, None)
    assert next_window(MAX_OFFSET - 500, 500, None, rows) == (MAX_OFFSET, None)  # offset 10,000 is allowed
    offset, end = next_window(MAX_OFFSET, 500, None, rows)
    assert (offset, end) == (0, min(r["timestamp"] for r in rows))
    assert end is not None
    # the next window goes deeper still
    deeper = [{"timestamp": end - i // 7} for i in range(MAX_OFFSET)]
    assert next_window(MAX_OFFSET, 500, end, deeper) == (0, min(r["timestamp"] for r in deeper))


def test_paging_gives_up_when_one_second_holds_more_than_the_cap() -> None:
    same = [{"timestamp": 77} for _ in range(MAX_OFFSET)]
    with pytest.raises(Rejected):
        next_window(MAX_OFFSET, 500, 77, same)
    with pytest.raises(Rejected):
        next_window(MAX_OFFSET, 500, None, [{"timestamp": "x"}] * 3)


# ------------------------------------------------------------------------------ request budget

class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_budget_bursts_to_its_size_then_paces_requests() -> None:
    clock = Clock()
    bucket = TokenBucket(per_window=10, window=10.0, clock=clock)
    assert [bucket.take() for _ in range(10)] == [0.0] * 10
    assert bucket.take() == pytest.approx(1.0)  # one token a second
    clock.t += 1.0
    assert bucket.take() == 0.0
    assert bucket.take() > 0


def test_budget_pause_holds_every_request_until_retry_after() -> None:
    clock = Clock()
    bucket = TokenBucket(per_window=100, clock=clock)
    bucket.pause(3.0)
    assert bucket.take() == pytest.approx(3.0)
    bucket.pause(1.0)  # a shorter pause does not cut the longer one
    clock.t += 2.5
    assert bucket.take() == pytest.approx(0.5)
    clock.t += 0.5
    assert bucket.take() == 0.0


# ------------------------------------------------------------------------------ live-data frames

def test_documented_activity_frame_gives_the_same_trade_and_signal_id_as_the_data_api_row() -> None:
    frame = rtds_frame()
    trades, bad = parse_frame(json.dumps(frame))
    assert bad == []
    assert len(trades) == 1
    lt = trades[0]
    assert (lt.kind, lt.ts_ms) == ("trades", 1785027308241)
    assert (lt.trade.account, lt.trade.side, lt.trade.size, lt.trade.price, lt.trade.timestamp) == (
        WALLET, "BUY", 4.33, 0.45, 1785027308)
    payload = frame["payload"]
    assert isinstance(payload, dict)
    # the same trade as the poller reads it (timestamp as a string, as one report saw on the socket)
    row = parse_trade({**payload, "timestamp": str(payload["timestamp"])})
    target = Target(account=WALLET)
    assert signal_id(WALLET, row) == signal_id(WALLET, lt.trade)
    assert to_signal(row, target, 1, "poll").id == to_signal(lt.trade, target, 2, "rtds").id


def test_orders_matched_arrays_and_noise_frames() -> None:
    frame = rtds_frame()
    both = [frame, {**frame, "type": "orders_matched"}, {**frame, "topic": "comments"},
            {"topic": "activity", "type": "trades"}]  # no payload: ignored, as the official client does
    trades, bad = parse_frame(json.dumps(both))
    assert [t.kind for t in trades] == ["trades", "orders_matched"]
    assert trades[0].trade.key == trades[1].trade.key
    assert bad == []
    assert parse_frame("pong") == ([], [])
    assert parse_frame("PONG") == ([], [])
    with pytest.raises(BadFrame):
        parse_frame("{not json")
    broken = {**frame, "payload": {"side": "BUY"}}
    trades, bad = parse_frame(json.dumps([broken, frame, 7]))
    assert len(trades) == 1
    assert len(bad) == 2


def test_subscribe_frame_asks_for_both_trade_types_unfiltered() -> None:
    msg = json.loads(subscribe_frame())
    assert msg == {"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"},
                                                            {"topic": "activity", "type": "orders_matched"}]}
    assert json.loads(subscribe_frame("unsubscribe"))["action"] == "unsubscribe"


def test_watchdog_replaces_a_socket_that_answers_pings_but_delivers_no_data() -> None:
    # a frozen connection is not revived by resubscribing on it: a new socket is (docs/venue.md L2)
    dog = SilenceWatchdog(silence_sec=30, ping_interval=5)
    dog.connected(0.0)
    dog.heard(10.0)
    dog.heard(20.0)
    dog.heard(30.0)
    assert dog.check(30.0) is Action.NONE
    dog.heard(31.0)
    assert dog.check(31.0) is Action.RECONNECT  # pongs keep coming but no data: a frozen socket
    assert "no data" in dog.why(31.0)
    dog.connected(70.0)
    dog.data(95.0)  # data on the new socket clears the alarm
    assert dog.check(99.0) is Action.NONE


def test_watchdog_reconnects_a_socket_that_stopped_answering_pings() -> None:
    dog = SilenceWatchdog(silence_sec=300, ping_interval=5)
    dog.connected(0.0)
    dog.data(10.0)
    assert dog.check(24.0) is Action.NONE
    assert dog.check(25.5) is Action.RECONNECT


# ------------------------------------------------------------------------------ Gamma and the screen

def test_gamma_market_json_text_fields_and_string_numbers_are_parsed() -> None:
    markets, bad = parse_markets(gamma_rows())
    assert bad == []
    btc, fed = markets
    assert btc.outcomes == ("Up", "Down")
    assert btc.prices == (0.505, 0.495)
    assert btc.token_ids[0].startswith("1042")
    assert btc.end_date == datetime(2026, 3, 12, 9, 25, tzinfo=UTC)
    assert (btc.volume, btc.liquidity, btc.tick_size, btc.min_order_size) == (9.999997, 20328.3747, 0.01, 5.0)
    assert fed.neg_risk is True
    assert fed.event_slug == "fed-june"
    # a real list instead of JSON text, and numbers only as strings, are read the same way
    raw = dict(gamma_rows()[1])
    raw.update(outcomes=["Yes", "No"], clobTokenIds=[FED_YES, FED_NO], volumeNum=None, volume="1250000.5")
    assert parse_market(raw) == fed


def test_bad_gamma_markets_are_counted_not_raised() -> None:
    good = gamma_rows()[0]
    rows = [good, "x", {**good, "clobTokenIds": "[oops"}, {**good, "clobTokenIds": "[]"},
            {**good, "outcomes": '["Only one"]'}]
    markets, bad = parse_markets(rows)
    assert len(markets) == 1
    assert len(bad) == 4
    assert parse_markets({"error": "x"})[0] == []


def test_token_meta_names_the_outcome_and_the_sibling_and_round_trips() -> None:
    fed = parse_market(gamma_rows()[1])
    meta = token_meta(fed, FED_NO)
    assert (meta.outcome, meta.sibling_token, meta.neg_risk, meta.tick_size, meta.min_order_size) == (
        "No", FED_YES, True, 0.001, 5.0)
    assert meta.end_date == "2026-06-18T18:00:00Z"
    assert meta.question == "Will the Fed cut rates in June?"
    assert TokenMeta.from_hash(meta.to_hash()) == meta
    assert TokenMeta.from_hash({}) is None


NOW = datetime(2026, 6, 1, tzinfo=UTC)


def market(**kw: object) -> GammaMarket:
    base = parse_market(gamma_rows()[1])
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    fields.update(kw)
    return GammaMarket(**fields)  # type: ignore[arg-type]


def test_screen_checks_volume_liquidity_end_window_keywords_and_price_band() -> None:
    cfg = ScreenSection(enabled=True, min_volume=1000, min_liquidity=500, end_within_hours=24 * 30,
                        end_after_hours=24, min_price=0.05, max_price=0.5, keyword_blacklist=("bitcoin",))
    ok = market()
    assert market_verdict(ok, cfg, NOW) is None
    assert market_verdict(market(volume=999), cfg, NOW) == "volume"
    assert market_verdict(market(liquidity=10), cfg, NOW) == "liquidity"
    assert market_verdict(market(closed=True), cfg, NOW) == "not_open"
    assert market_verdict(market(end_date=NOW - timedelta(hours=1)), cfg, NOW) == "ended"
    assert market_verdict(market(end_date=NOW + timedelta(hours=2)), cfg, NOW) == "ends_too_soon"
    assert market_verdict(market(end_date=NOW + timedelta(days=60)), cfg, NOW) == "ends_too_late"
    assert market_verdict(market(end_date=None), cfg, NOW) == "ends_too_late"
    assert market_verdict(market(question="Will BITCOIN hit 200k?"), cfg, NOW) == "keyword"
    candidates, rejected = screen([ok, market(volume=1)], cfg, NOW)
    assert [(c.token_id, c.outcome, c.price) for c in candidates] == [(FED_YES, "Yes", 0.12)]  # No at 0.88 is out
    assert rejected == {"volume": 1, "price": 1}
    open_cfg = ScreenSection(enabled=True)
    assert len(screen([ok], open_cfg, NOW)[0]) == 2


def test_screen_signal_is_a_buy_with_one_id_per_token() -> None:
    ok = market()
    candidates, _ = screen([ok], ScreenSection(enabled=True), NOW)
    meta = token_meta(ok, FED_YES)
    first = screen_signal(candidates[0], 1000, meta)
    again = screen_signal(candidates[0], 99_000, meta)
    assert first.id == again.id
    assert (first.side, first.source, first.account, first.token_id, first.neg_risk, first.sibling_token) == (
        "BUY", "screen", "", FED_YES, True, FED_NO)
    assert decode(first.encode()) == first


# ------------------------------------------------------------------------------ config reload

def test_target_diff_names_added_removed_disabled_enabled_and_changed() -> None:
    a, b, c, d = ("0x" + ch * 40 for ch in "abcd")
    old = [Target(account=a), Target(account=b), Target(account=c, enabled=False), Target(account=d, min_size=1)]
    new = [Target(account=a, enabled=False), Target(account=c), Target(account=d, min_size=5),
           Target(account="0x" + "e" * 40)]
    ch = diff_targets(old, new)
    assert ch.as_detail() == {"added": ["0x" + "e" * 40], "removed": [b], "disabled": [a], "enabled": [c],
                              "changed": [d]}
    assert not diff_targets(old, old)


# ------------------------------------------------------------------------------ latency metrics

def test_latency_histogram_quantiles_are_bucket_upper_bounds() -> None:
    h = LatencyHistogram()
    assert h.quantile(0.5) is None
    for ms in [3] * 90 + [40] * 9 + [700_000]:
        h.observe(ms)
    assert h.quantile(0.5) == 5
    assert h.quantile(0.99) == 50
    assert h.quantile(1.0) == 700_000
    s = h.summary()
    assert (s["n"], s["max_ms"]) == (100, 700_000)


# ------------------------------------------------------------------------------ fuzzed input

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
                    max_leaves=20)
FIELDS = st.sampled_from(["proxyWallet", "side", "asset", "size", "price", "timestamp", "transactionHash",
                          "clobTokenIds", "outcomes", "outcomePrices", "endDate", "volumeNum", "id"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSON | st.sampled_from(["BUY", "1", "0.5", "[\"1\",\"2\"]", 1785027308])),
       st.sampled_from(["trades", "orders_matched", "x"]))
def test_fuzzed_payloads_never_raise_past_the_parsers(payload: dict[str, object], kind: str) -> None:
    trades, bad = parse_frame(json.dumps({"topic": "activity", "type": kind, "payload": payload}))
    assert len(trades) + len(bad) <= 1
    markets, mbad = parse_markets([payload])
    assert len(markets) + len(mbad) == 1


def test_recent_ids_forget_the_oldest_beyond_their_size() -> None:
    recent = RecentIds(size=3)
    recent.add_all(["a", "b", "a", "c"])
    assert len(recent) == 3
    recent.add_all(["d"])
    assert "a" not in recent
    assert all(x in recent for x in "bcd")
