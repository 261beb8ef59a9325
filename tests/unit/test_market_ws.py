"""Market-channel frame decoding against hand-written frames in the documented shapes (§4.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.venue.market_ws import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    Level,
    MarketFrameError,
    MarketResolved,
    PriceChangeBatch,
    TickSizeChange,
    decode_frame,
    decode_rest_book,
    operation_message,
    subscribe_message,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "polymarket"
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_book_array_frame_decodes_each_snapshot_with_levels_in_wire_order() -> None:
    events = decode_frame(frame("ws_book.json"))
    assert [type(e) for e in events] == [BookSnapshot, BookSnapshot]
    yes = events[0]
    assert isinstance(yes, BookSnapshot)
    assert yes.asset_id == YES
    assert yes.timestamp == 1757908892000
    # wire order kept: the best bid (0.47) and best ask (0.49) are the LAST entries
    assert yes.bids == (Level(0.44, 310.0), Level(0.46, 120.5), Level(0.47, 55.0))
    assert yes.asks[-1] == Level(0.49, 25.0)
    assert yes.tick_size is None
    assert events[1].asset_id == NO  # type: ignore[union-attr]


def test_current_price_change_covers_both_tokens_with_best_prices() -> None:
    (ev,) = decode_frame(frame("ws_price_change.json"))
    assert isinstance(ev, PriceChangeBatch)
    assert ev.timestamp == 1757908892351
    assert [(c.asset_id, c.price, c.size, c.side) for c in ev.changes] == [
        (YES, 0.48, 200.0, "BUY"), (NO, 0.52, 200.0, "SELL"),
    ]
    assert (ev.changes[0].best_bid, ev.changes[0].best_ask) == (0.48, 0.49)


def test_legacy_price_change_takes_asset_from_the_top_level() -> None:
    (ev,) = decode_frame(frame("ws_price_change_legacy.json"))
    assert isinstance(ev, PriceChangeBatch)
    assert [(c.asset_id, c.price, c.size, c.side) for c in ev.changes] == [
        (YES, 0.49, 0.0, "SELL"), (YES, 0.47, 70.0, "BUY"),
    ]
    assert ev.changes[0].best_bid is None
    assert ev.timestamp == 1757908893000


def test_oldest_price_change_with_top_level_level() -> None:
    raw = json.dumps({"event_type": "price_change", "asset_id": YES, "price": "0.3", "side": "BUY",
                      "size": "10", "timestamp": "5"})
    (ev,) = decode_frame(raw)
    assert isinstance(ev, PriceChangeBatch)
    assert [(c.asset_id, c.price, c.size, c.side) for c in ev.changes] == [(YES, 0.3, 10.0, "BUY")]


def test_last_trade_tick_size_and_best_bid_ask() -> None:
    (trade,) = decode_frame(frame("ws_last_trade_price.json"))
    assert trade == LastTrade(asset_id=YES, market=trade.market, price=0.49, size=25.0, side="BUY",
                              timestamp=1757908894120)
    (tick,) = decode_frame(frame("ws_tick_size_change.json"))
    assert isinstance(tick, TickSizeChange)
    assert (tick.old_tick_size, tick.new_tick_size) == (0.01, 0.001)
    (bba,) = decode_frame(frame("ws_best_bid_ask.json"))
    assert isinstance(bba, BestBidAsk)
    assert (bba.best_bid, bba.best_ask, bba.timestamp) == (0.47, 0.49, 1757908896000)


def test_pong_and_unknown_event_types_decode_to_nothing() -> None:
    assert decode_frame("PONG") == []
    assert decode_frame(b"PONG") == []
    unknown = json.dumps([{"event_type": "new_market", "id": "1"}, {"event_type": "comment_created"}])
    assert decode_frame(unknown) == []


def test_market_resolved_names_the_market_its_outcomes_and_the_winner() -> None:
    (ev,) = decode_frame(frame("ws_market_resolved.json"))
    assert ev == MarketResolved(market="0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1",
                                market_id="1031769", asset_ids=(YES, NO), winning_asset_id=YES,
                                winning_outcome="Yes", timestamp=1757908899000)


@pytest.mark.parametrize("change", [
    {"market": None},  # which market resolved is the one thing it must say
    {"assets_ids": "oops"},
    {"assets_ids": [YES, True]},
    {"winning_asset_id": "123"},  # not one of the market's outcomes
])
def test_malformed_market_resolved_is_a_frame_error(change: dict[str, object]) -> None:
    raw = {**json.loads(frame("ws_market_resolved.json")), **change}
    with pytest.raises(MarketFrameError):
        decode_frame(json.dumps(raw))


@pytest.mark.parametrize("raw", [
    "not json at all",
    "{\"event_type\": \"book\"",  # truncated
    "42",
    json.dumps({"no_event_type": 1}),
    json.dumps({"event_type": "book", "bids": [], "asks": []}),  # no asset_id
    json.dumps({"event_type": "price_change", "price_changes": [{"asset_id": "1", "price": "x", "size": "1",
                                                                 "side": "BUY"}]}),
    json.dumps({"event_type": "price_change", "price_changes": [{"asset_id": "1", "price": "0.5", "size": "1",
                                                                 "side": "SIDEWAYS"}]}),
    json.dumps({"event_type": "tick_size_change", "asset_id": "1", "new_tick_size": "0"}),
    json.dumps({"event_type": "book", "asset_id": "1", "bids": "oops", "asks": []}),
    json.dumps({"event_type": "last_trade_price", "asset_id": "1", "price": "NaN"}),
])
def test_malformed_frames_raise_the_one_frame_error(raw: str) -> None:
    with pytest.raises(MarketFrameError):
        decode_frame(raw)


def test_one_bad_element_keeps_the_good_ones_on_the_error() -> None:
    good = json.loads(frame("ws_book.json"))
    raw = json.dumps([good[0], {"event_type": "book", "asset_id": "x", "bids": [{"price": "?"}]}, good[1]])
    with pytest.raises(MarketFrameError) as info:
        decode_frame(raw)
    assert [e.asset_id for e in info.value.events] == [YES, NO]  # type: ignore[union-attr]


def test_outgoing_messages_follow_the_documented_shapes() -> None:
    # custom_feature_enabled: best_bid_ask and market_resolved come only with it (docs/venue.md M1)
    assert json.loads(subscribe_message(["1", "2"])) == {"assets_ids": ["1", "2"], "type": "market",
                                                         "custom_feature_enabled": True}
    assert json.loads(operation_message("subscribe", ["3"])) == {"operation": "subscribe", "assets_ids": ["3"],
                                                                 "custom_feature_enabled": True}
    assert json.loads(operation_message("unsubscribe", ["3"])) == {"operation": "unsubscribe", "assets_ids": ["3"]}


@pytest.mark.parametrize("raw", [
    json.dumps({"event_type": "book", "asset_id": "1", "bids": [{"price": "1.5", "size": "1"}], "asks": []}),
    json.dumps({"event_type": "book", "asset_id": "1", "bids": [{"price": "0.5", "size": "-1"}], "asks": []}),
    json.dumps({"event_type": "book", "asset_id": True, "bids": [], "asks": []}),
    json.dumps({"event_type": "book", "asset_id": "1", "bids": [], "asks": [], "tick_size": "2"}),
    json.dumps({"event_type": "price_change", "price_changes": ["0.5"]}),
    json.dumps({"event_type": "price_change", "price_changes": {"asset_id": "1"}}),
    json.dumps({"event_type": "price_change", "asset_id": "1", "changes": [["0.5", "1", "BUY"]]}),
    json.dumps({"event_type": "price_change", "price_changes": [{"asset_id": "1", "price": "0.5", "size": "1",
                                                                 "side": "BUY", "best_bid": "7"}]}),
    json.dumps({"event_type": "tick_size_change", "asset_id": "1", "new_tick_size": "1"}),
    json.dumps({"event_type": "last_trade_price", "asset_id": "1", "price": "-0.1", "size": "1"}),
    json.dumps({"event_type": 5}),
    b"\xff\xfe not utf-8",
])
def test_out_of_range_and_mistyped_values_are_frame_errors(raw: str | bytes) -> None:
    with pytest.raises(MarketFrameError):
        decode_frame(raw)


def test_one_array_frame_may_mix_every_event_type_in_order() -> None:
    book = json.loads(frame("ws_book.json"))[0]
    items = [book, json.loads(frame("ws_price_change.json")), json.loads(frame("ws_price_change_legacy.json")),
             json.loads(frame("ws_last_trade_price.json")), json.loads(frame("ws_tick_size_change.json")),
             json.loads(frame("ws_best_bid_ask.json")), {"event_type": "new_market", "id": "9"}]
    events = decode_frame(json.dumps(items))
    assert [type(e) for e in events] == [BookSnapshot, PriceChangeBatch, PriceChangeBatch, LastTrade,
                                         TickSizeChange, BestBidAsk]
    assert decode_frame("[]") == []
    assert decode_frame("  PONG\n") == []


def test_rest_book_keeps_tick_size_and_last_trade_price() -> None:
    rest = {"market": "0xabc", "asset_id": YES, "timestamp": "1757908892000", "hash": "h",
            "bids": [{"price": "0.4", "size": "10"}, {"price": "0.45", "size": "3"}],
            "asks": [{"price": "0.5", "size": "2"}, {"price": "0.47", "size": "8"}],
            "min_order_size": "5", "tick_size": "0.01", "neg_risk": False, "last_trade_price": "0.46"}
    book = decode_rest_book(rest)
    assert (book.asset_id, book.tick_size, book.last_trade_price, book.timestamp) == (YES, 0.01, 0.46, 1757908892000)
    assert book.bids[-1] == Level(0.45, 3.0)
    assert book.asks[-1] == Level(0.47, 8.0)
    with pytest.raises(MarketFrameError):
        decode_rest_book({"bids": []})
    with pytest.raises(MarketFrameError):
        decode_rest_book(["not", "an", "object"])


@pytest.mark.parametrize(("side", "level"), [
    ("bids", {"price": "NaN", "size": "10"}),
    ("asks", {"price": float("nan"), "size": "10"}),  # what json.loads makes of a bare NaN
    ("bids", {"price": "0.4", "size": "nan"}),
    ("asks", {"price": "inf", "size": "10"}),
    ("bids", {"price": "0.4", "size": "Infinity"}),
    ("asks", {"price": "0.5", "size": float("-inf")}),
    ("bids", {"price": "1.01", "size": "10"}),
    ("asks", {"price": "-0.01", "size": "10"}),
    ("bids", {"price": "0.4", "size": "-1"}),
])
def test_rest_book_refuses_nan_infinities_prices_outside_0_1_and_negative_sizes(
        side: str, level: dict[str, object]) -> None:
    rest: dict[str, object] = {"asset_id": YES, "bids": [{"price": "0.4", "size": "10"}],
                               "asks": [{"price": "0.5", "size": "10"}]}
    decode_rest_book(rest)  # the book without the bad level is fine
    rest[side] = [*rest[side], level]  # type: ignore[misc]
    with pytest.raises(MarketFrameError):
        decode_rest_book(rest)


def test_levels_may_be_pairs_and_sides_are_case_insensitive() -> None:
    raw = json.dumps({"event_type": "book", "asset_id": "1", "bids": [["0.4", "1"]], "asks": [],
                      "timestamp": ""})
    (ev,) = decode_frame(raw)
    assert isinstance(ev, BookSnapshot)
    assert (ev.bids, ev.timestamp) == ((Level(0.4, 1.0),), 0)
    (pc,) = decode_frame(json.dumps({"event_type": "price_change", "price_changes": [
        {"asset_id": "1", "price": "0.4", "size": "0", "side": "buy"}]}))
    assert isinstance(pc, PriceChangeBatch)
    assert pc.changes[0].side == "BUY"
