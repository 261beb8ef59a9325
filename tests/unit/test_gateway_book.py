"""The gateway's L2 books and tick emission (B2, B3, B5), plus the shard planner (B1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.ws_gateway.book import Books
from services.ws_gateway.shards import plan_shards
from shared.ticks import Tick
from shared.venue.market_ws import MarketFrameError, decode_frame, decode_rest_book

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "polymarket"
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def seeded(*tokens: str) -> tuple[Books, list[Tick]]:
    books = Books()
    for t in tokens or (YES, NO):
        books.track(t)
    ticks = books.apply(decode_frame(frame("ws_book.json")), ts_recv=1_000)
    return books, ticks


def by_token(ticks: list[Tick]) -> dict[str, Tick]:
    return {t.token_id: t for t in ticks}


def test_snapshot_best_is_max_bid_and_min_ask_not_index_zero() -> None:
    _, ticks = seeded()
    yes = by_token(ticks)[YES]
    # wire: bids [0.44, 0.46, 0.47], asks [0.53, 0.51, 0.49]; index 0 would give 0.44 / 0.53
    assert (yes.bid, yes.bid_size, yes.ask, yes.ask_size) == (0.47, 55.0, 0.49, 25.0)
    assert (yes.seq, yes.ts_event, yes.ts_recv, yes.tick_size, yes.last) == (1, 1757908892000, 1_000, 0.01, None)
    no = by_token(ticks)[NO]
    assert (no.bid, no.ask) == (0.51, 0.53)


def test_untracked_tokens_are_ignored() -> None:
    books, ticks = seeded(YES)
    assert [t.token_id for t in ticks] == [YES]
    assert NO not in books
    assert books.untracked == 1


def test_current_price_change_moves_the_top_of_both_tokens() -> None:
    books, _ = seeded()
    ticks = by_token(books.apply(decode_frame(frame("ws_price_change.json")), ts_recv=2_000))
    assert (ticks[YES].bid, ticks[YES].bid_size, ticks[YES].seq) == (0.48, 200.0, 2)
    assert ticks[YES].ts_event == 1757908892351
    assert (ticks[NO].ask, ticks[NO].ask_size, ticks[NO].bid) == (0.52, 200.0, 0.51)
    assert books.drift == 0  # the venue's best_bid/best_ask agree with our book


def test_legacy_price_change_size_zero_removes_the_level() -> None:
    books, _ = seeded()
    (tick,) = books.apply(decode_frame(frame("ws_price_change_legacy.json")), ts_recv=3_000)
    # ask 0.49 removed -> next best ask 0.51; bid 0.47 resized to 70
    assert (tick.bid, tick.bid_size, tick.ask, tick.ask_size, tick.seq) == (0.47, 70.0, 0.51, 80.0, 2)


def test_change_below_the_top_emits_nothing_and_keeps_seq() -> None:
    books, _ = seeded()
    deep = json.dumps({"event_type": "price_change", "market": "m", "timestamp": "9",
                       "price_changes": [{"asset_id": YES, "price": "0.40", "size": "5", "side": "BUY"}]})
    assert books.apply(decode_frame(deep), ts_recv=4_000) == []
    assert books.seq(YES) == 1
    same_snapshot = books.apply(decode_frame(frame("ws_book.json")), ts_recv=5_000)
    assert same_snapshot == []  # the same top again is not a change


def test_last_trade_is_a_change_of_the_tick() -> None:
    books, _ = seeded()
    (tick,) = books.apply(decode_frame(frame("ws_last_trade_price.json")), ts_recv=6_000)
    assert (tick.last, tick.bid, tick.seq) == (0.49, 0.47, 2)


def test_tick_size_change_clears_the_book_until_the_next_snapshot() -> None:
    books, _ = seeded()
    (tick,) = books.apply(decode_frame(frame("ws_tick_size_change.json")), ts_recv=7_000)
    assert (tick.bid, tick.ask, tick.bid_size, tick.tick_size, tick.seq) == (None, None, 0.0, 0.001, 2)
    # deltas without a fresh snapshot are ignored
    assert books.apply(decode_frame(frame("ws_price_change_legacy.json")), ts_recv=7_500) == []
    assert books.ignored_deltas == 2
    ticks = by_token(books.apply(decode_frame(frame("ws_book.json")), ts_recv=8_000))
    assert (ticks[YES].bid, ticks[YES].ask, ticks[YES].tick_size, ticks[YES].seq) == (0.47, 0.49, 0.001, 3)


def test_a_socket_book_without_tick_size_takes_its_tick_from_the_rest_book() -> None:
    # the venue's book event may carry no tick_size (docs/venue.md M2); REST /book always does
    books, ticks = seeded()
    assert by_token(ticks)[YES].tick_size == 0.01  # the default, until the venue says
    assert books.tick_unknown == {YES, NO}
    rest = decode_rest_book({**json.loads(frame("ws_book.json"))[0], "tick_size": "0.001"})  # same levels
    out, matched = books.reseed(rest, 2_000)
    assert matched
    assert [(t.token_id, t.tick_size, t.bid, t.seq) for t in out] == [(YES, 0.001, 0.47, 2)]
    assert books.tick_unknown == {NO}
    # later socket books without a tick keep the venue's, and ask for nothing more
    later = by_token(books.apply(decode_frame(frame("ws_book.json")), ts_recv=3_000))
    assert YES not in later  # nothing changed: no tick
    assert books.tick_unknown == {NO}
    assert books.reseed(rest, 4_000) == ([], True)  # the same REST book again: news to nobody


def test_a_tick_size_change_makes_the_tick_known() -> None:
    books, _ = seeded()
    books.apply(decode_frame(frame("ws_tick_size_change.json")), ts_recv=7_000)
    assert YES not in books.tick_unknown
    books.apply(decode_frame(frame("ws_book.json")), ts_recv=8_000)
    assert YES not in books.tick_unknown  # the next snapshot, without a tick, keeps 0.001


def test_market_resolved_is_kept_for_the_caller_and_touches_no_book() -> None:
    books, _ = seeded()
    assert books.apply(decode_frame(frame("ws_market_resolved.json")), ts_recv=5_000) == []
    (ev,) = books.resolved
    assert (ev.winning_asset_id, ev.asset_ids) == (YES, (YES, NO))
    assert books.untracked == 0


def test_invalidated_book_waits_for_the_reseed() -> None:
    books, _ = seeded()
    books.invalidate([YES])
    assert books.apply(decode_frame(frame("ws_price_change_legacy.json")), ts_recv=1) == []
    reseed = json.dumps({"event_type": "book", "asset_id": YES, "bids": [{"price": "0.3", "size": "1"}],
                         "asks": [], "timestamp": "10"})
    (tick,) = books.apply(decode_frame(reseed), ts_recv=2)
    assert (tick.bid, tick.ask, tick.ask_size, tick.seq) == (0.3, None, 0.0, 2)


def test_seq_continues_from_a_previous_run_and_after_forget() -> None:
    books = Books()
    books.track(YES, seq=41)
    (tick,) = books.apply(decode_frame(frame("ws_book.json")), ts_recv=1)
    assert tick.seq == 42
    books.forget(YES)
    books.track(YES)
    (again,) = books.apply(decode_frame(frame("ws_book.json")), ts_recv=2)
    assert again.seq == 43  # re-added: first frame is a tick, numbering never goes back


def test_ts_event_falls_back_to_receive_time_without_a_timestamp() -> None:
    books = Books()
    books.track("t")
    (tick,) = books.apply(decode_frame('{"event_type":"book","asset_id":"t","bids":[],"asks":[]}'), ts_recv=77)
    assert (tick.ts_event, tick.bid, tick.ask) == (77, None, None)


def test_garbage_frame_raises_the_frame_error() -> None:
    with pytest.raises(MarketFrameError):
        decode_frame('{"event_type": "price_change", "price_changes": [{"asset_id": 1}]}')


def test_tick_round_trips_through_json_and_hash() -> None:
    _, ticks = seeded()
    t = by_token(ticks)[YES]
    assert Tick.from_json(t.to_json()) == t
    assert Tick.from_hash(t.to_hash()) == t


def test_shards_fill_existing_connections_then_open_new_ones() -> None:
    plan = plan_shards([{"a", "b"}], {"a", "b", "c", "d", "e"}, cap=3)
    assert plan == [{"a", "b", "c"}, {"d", "e"}]
    # tokens stay where they are; a new one takes the first free room, even on an emptied connection
    assert plan_shards([{"a", "b", "c"}, {"d", "e"}], {"d", "x"}, cap=3) == [{"x"}, {"d"}]
    assert plan_shards([{"a", "b", "c"}, {"d", "e"}], {"d"}, cap=3) == [set(), {"d"}]  # caller closes the first
    assert plan_shards([], set(), cap=200) == []
    big = plan_shards([], {str(i) for i in range(450)}, cap=200)
    assert [len(s) for s in big] == [200, 200, 50]
    assert set().union(*big) == {str(i) for i in range(450)}


def test_venue_best_prices_that_disagree_with_the_book_count_as_drift() -> None:
    books, _ = seeded()
    # both entries claim best_bid 0.50 after the batch; our book says 0.48 after it
    wrong = json.dumps({"event_type": "price_change", "market": "m", "timestamp": "9", "price_changes": [
        {"asset_id": YES, "price": "0.45", "size": "5", "side": "BUY", "best_bid": "0.5", "best_ask": "0.49"},
        {"asset_id": YES, "price": "0.48", "size": "5", "side": "BUY", "best_bid": "0.5", "best_ask": "0.49"},
    ]})
    books.apply(decode_frame(wrong), ts_recv=1)
    assert books.drift == 1
    # an empty side is reported as 0 / 1 by the venue: not drift
    books.track("e")
    empty = '{"event_type":"book","asset_id":"e","bids":[],"asks":[],"timestamp":"1"}'
    books.apply(decode_frame(empty), ts_recv=2)
    books.apply(decode_frame(json.dumps({"event_type": "price_change", "timestamp": "2", "price_changes": [
        {"asset_id": "e", "price": "0.3", "size": "0", "side": "BUY", "best_bid": "0", "best_ask": "1"}]})), ts_recv=3)
    assert books.drift == 1


def test_drift_lands_the_token_in_drifted_and_a_fresh_snapshot_clears_it() -> None:
    books, _ = seeded()
    wrong = json.dumps({"event_type": "price_change", "market": "m", "timestamp": "9", "price_changes": [
        {"asset_id": YES, "price": "0.45", "size": "5", "side": "BUY", "best_bid": "0.46", "best_ask": "0.49"}]})
    books.apply(decode_frame(wrong), ts_recv=1)
    assert books.drifted == {YES}
    books.apply(decode_frame(frame("ws_book.json")), ts_recv=2)
    assert books.drifted == set()


def test_best_bid_ask_event_checks_the_book_without_changing_it() -> None:
    books, _ = seeded()
    assert books.apply(decode_frame(frame("ws_best_bid_ask.json")), ts_recv=1) == []  # 0.47 / 0.49: agrees
    assert (books.drift, books.drifted) == (0, set())
    other = json.dumps({"event_type": "best_bid_ask", "asset_id": YES, "best_bid": "0.3", "best_ask": "0.49",
                        "timestamp": "5"})
    assert books.apply(decode_frame(other), ts_recv=2) == []
    assert (books.drift, books.drifted) == (1, {YES})
    book = books.book(YES)
    assert book is not None
    assert book.top().bid == 0.47  # the check never rewrites the book: the REST reseed does


def test_snapshot_last_trade_price_seeds_last_only_until_a_trade_print() -> None:
    books = Books()
    books.track("t")
    snap = {"event_type": "book", "asset_id": "t", "bids": [], "asks": [], "timestamp": "1",
            "last_trade_price": "0.5"}
    (tick,) = books.apply(decode_frame(json.dumps(snap)), ts_recv=1)
    assert tick.last == 0.5
    trade = {"event_type": "last_trade_price", "asset_id": "t", "price": "0.61", "size": "3", "side": "SELL",
             "timestamp": "2"}
    (tick,) = books.apply(decode_frame(json.dumps(trade)), ts_recv=2)
    assert tick.last == 0.61
    assert books.apply(decode_frame(json.dumps(snap)), ts_recv=3) == []  # an older snapshot's price: kept 0.61


def test_silent_tokens_go_stale_with_a_tick_and_any_event_clears_it() -> None:
    books = Books()
    books.track(YES, now_ms=1_000)
    books.track(NO, now_ms=1_000)
    books.apply(decode_frame(frame("ws_book.json")), ts_recv=2_000)  # both heard at 2_000
    assert books.silent(now_ms=61_000, after_ms=60_000) == []
    books.apply(decode_frame(frame("ws_last_trade_price.json")), ts_recv=30_000)  # YES heard again
    assert books.silent(now_ms=62_500, after_ms=60_000) == [NO]
    books.heard_from([NO], now_ms=62_500)  # e.g. a REST check agreed: a quiet market, not a stale one
    assert books.silent(now_ms=62_500, after_ms=60_000) == []
    (stale,) = books.mark_stale([NO], ts_recv=200_000)
    assert (stale.token_id, stale.stale, stale.seq, stale.bid, stale.ts_event) == (NO, True, 2, 0.51, 200_000)
    assert books.mark_stale([NO], ts_recv=200_001) == []  # already stale: no second tick
    assert books.stale_tokens() == [NO]
    assert books.silent(now_ms=900_000, after_ms=60_000) == [YES]  # a stale token is not reported again
    (fresh,) = books.apply(decode_frame(frame("ws_price_change.json")), ts_recv=200_100)[1:]
    assert (fresh.token_id, fresh.stale, fresh.seq) == (NO, False, 3)
    assert books.stale_tokens() == []


def test_array_frame_with_a_book_and_its_deltas_gives_one_tick_per_token() -> None:
    books = Books()
    books.track(YES)
    snap = json.loads(frame("ws_book.json"))[0]
    delta = {"event_type": "price_change", "market": "m", "timestamp": "1757908892500", "price_changes": [
        {"asset_id": YES, "price": "0.48", "size": "9", "side": "BUY", "best_bid": "0.48", "best_ask": "0.49"},
        {"asset_id": YES, "price": "0.49", "size": "0", "side": "SELL", "best_bid": "0.48", "best_ask": "0.51"}]}
    (tick,) = books.apply(decode_frame(json.dumps([snap, delta])), ts_recv=5)
    assert (tick.bid, tick.bid_size, tick.ask, tick.ask_size, tick.seq) == (0.48, 9.0, 0.51, 80.0, 1)
    assert tick.ts_event == 1757908892500  # the latest venue time among the token's events
    assert books.drift == 0


def test_cached_best_prices_match_max_and_min_after_any_sequence_of_changes() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    prices = st.sampled_from([round(0.01 * i, 2) for i in range(1, 100)])
    change = st.tuples(st.sampled_from(["BUY", "SELL"]), prices, st.sampled_from([0.0, 0.0, 1.0, 5.0, 20.0]))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(prices, st.floats(0, 50)), max_size=8), st.lists(change, max_size=40))
    def check(levels: list[tuple[float, float]], changes: list[tuple[str, float, float]]) -> None:
        books = Books()
        books.track("t")
        snap = {"event_type": "book", "asset_id": "t", "timestamp": "1",
                "bids": [{"price": str(p), "size": str(s)} for p, s in levels], "asks": []}
        books.apply(decode_frame(json.dumps(snap)), ts_recv=1)
        for side, price, size in changes:
            books.apply(decode_frame(json.dumps({"event_type": "price_change", "timestamp": "2", "price_changes": [
                {"asset_id": "t", "price": str(price), "size": str(size), "side": side}]})), ts_recv=2)
            book = books.book("t")
            assert book is not None
            top = book.top()
            assert top.bid == (max(book.bids) if book.bids else None)
            assert top.ask == (min(book.asks) if book.asks else None)
            assert top.bid_size == (book.bids[top.bid] if top.bid is not None else 0.0)

    check()
