"""Trade-row parsing, the cursor and signal building of the collector (A2-A4). No Redis."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from services.signal_collector.cursor import Cursor, first_cursor, select_new
from services.signal_collector.signals import to_signal, wanted
from shared.config import Target
from shared.messages import Signal, decode, stable_id
from shared.venue.data_api import Trade, parse_trade, parse_trades

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "polymarket"
WALLET = "0x6af75d4e4aaf700450efbac3708cce1665810ff1"
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
TX = "0x9f0e6c2d4b1a38577e6f5d4c3b2a19087f6e5d4c3b2a19087f6e5d4c3b2a1908"


def page() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads((FIXTURES / "data_api_trades.json").read_text())
    return rows


def trade(ts: int, tx: str = "0xaa", size: float = 10.0, side: str = "BUY", price: float = 0.5) -> Trade:
    return Trade(account=WALLET, side=side, token_id=YES, size=size, price=price, timestamp=ts,  # type: ignore[arg-type]
                 tx_hash=tx)


def test_documented_row_parses_every_field() -> None:
    trades, bad = parse_trades(page())
    assert bad == []
    t = trades[1]
    assert t == Trade(account=WALLET, side="BUY", token_id=YES, size=120.5, price=0.47, timestamp=1774750006,
                      condition_id="0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1",
                      slug="will-the-fed-cut-rates-in-june", outcome="Yes",
                      title="Will the Fed cut rates in June?", tx_hash=TX)


def test_field_name_variants_and_numbers_as_strings_give_the_same_trade() -> None:
    base = parse_trade(page()[1])
    variants = [
        {"proxy_wallet": WALLET, "side": "buy", "token_id": YES, "size": "120.5", "price": "0.47",
         "timestamp": "1774750006", "transaction_hash": TX},
        {"proxyWallet": WALLET.upper().replace("0X", "0x"), "side": "BUY", "asset_id": YES, "size": 120.5,
         "price": "0.470", "timestamp": 1774750006000, "transactionHash": TX.upper().replace("0X", "0x")},
        {"user": WALLET, "side": "BUY", "tokenId": YES, "size": "120.50", "price": 0.47, "timestamp": 1774750006,
         "txHash": TX},
    ]
    for row in variants:
        t = parse_trade(row)
        assert (t.account, t.side, t.token_id, t.size, t.price, t.timestamp) == (
            WALLET, "BUY", YES, 120.5, 0.47, 1774750006)
        assert t.key == base.key


def test_malformed_rows_are_skipped_and_counted_never_raised() -> None:
    good = page()[0]
    rows: list[object] = [
        good,
        "not a row",
        None,
        {**good, "side": "HOLD"},
        {**good, "asset": None},
        {k: v for k, v in good.items() if k != "asset"},
        {**good, "size": "lots"},
        {**good, "size": 0},
        {**good, "price": 1.5},
        {**good, "timestamp": None},
        {**good, "price": True},
    ]
    trades, bad = parse_trades(rows)
    assert len(trades) == 1
    assert len(bad) == 10
    assert trades[0].side == "SELL"


def test_trade_key_separates_fills_of_one_transaction() -> None:
    trades, _ = parse_trades(page())
    same_tx = [t for t in trades if t.tx_hash == TX]
    assert len(same_tx) == 2
    assert same_tx[0].key != same_tx[1].key
    assert same_tx[0].key == (TX, YES, "BUY", "120.5", "0.47")
    assert same_tx[0].key_id == stable_id(TX, YES, "BUY", "120.5", "0.47")


def test_first_run_starts_now_unless_a_lookback_is_configured() -> None:
    assert first_cursor(1_000.9, 0) == Cursor(1_000, floor=1_000)
    assert first_cursor(1_000.0, 300) == Cursor(700, floor=700)
    history = [trade(999), trade(990, "0xbb")]
    assert select_new(first_cursor(1_000, 0), history) == ([], Cursor(1_000, floor=1_000))
    # the late-trade overlap never reaches below where following began
    assert first_cursor(1_000, 0).read_from(30) == 1_000
    assert select_new(first_cursor(1_000, 0), history, overlap_sec=30) == ([], Cursor(1_000, floor=1_000))
    new, _ = select_new(first_cursor(1_000, 300), history)
    assert [t.timestamp for t in new] == [990, 999]  # oldest first


def test_a_trade_indexed_late_below_the_cursor_is_offered_again_within_the_overlap() -> None:
    # the Data API indexes trades 1-4 s late, not always in order: 0xlate (second 99) shows up
    # after 0xb (second 100) was taken
    a, b, late = trade(98, "0xa"), trade(100, "0xb"), trade(99, "0xlate")
    new, cur = select_new(Cursor(90, floor=90), [b, a], overlap_sec=5)
    assert [t.tx_hash for t in new] == ["0xa", "0xb"]
    assert cur == Cursor(100, frozenset({b.key_id}), floor=90)
    assert cur.read_from(5) == 95  # the poll asks from second 95 ...
    new, cur2 = select_new(cur, [b, late, a], overlap_sec=5)
    # ... so 0xlate comes back; 0xa too (the seen-set in Redis drops it), 0xb is known at the cursor
    assert [t.tx_hash for t in new] == ["0xa", "0xlate"]
    assert cur2 == cur  # older trades never move the cursor
    # without the overlap the late trade would be lost for good
    assert select_new(cur, [b, late, a]) == ([], cur)
    # and nothing below the overlap is offered
    assert select_new(cur, [trade(94, "0xold")], overlap_sec=5) == ([], cur)


def test_trades_sharing_the_cursor_second_are_neither_lost_nor_repeated() -> None:
    a, b, c = trade(100, "0xa"), trade(100, "0xb"), trade(100, "0xc")
    new, cur = select_new(Cursor(90), [b, a])
    assert {t.tx_hash for t in new} == {"0xa", "0xb"}
    assert cur == Cursor(100, frozenset({a.key_id, b.key_id}))
    # c lands in the same second after the poll: the next poll (start=100) returns a, b, c
    new, cur2 = select_new(cur, [c, b, a])
    assert [t.tx_hash for t in new] == ["0xc"]
    assert cur2 == Cursor(100, frozenset({a.key_id, b.key_id, c.key_id}))
    # a later second replaces the key set; older rows are dropped
    d = trade(101, "0xd")
    new, cur3 = select_new(cur2, [d, c, b, a, trade(50, "0xold")])
    assert [t.tx_hash for t in new] == ["0xd"]
    assert cur3 == Cursor(101, frozenset({d.key_id}))
    assert select_new(cur3, [d, c]) == ([], cur3)


def test_same_second_trades_keep_the_venue_order_oldest_first() -> None:
    served = [trade(7, f"0x{i}") for i in range(9, -1, -1)]  # newest first, all in one second
    new, _ = select_new(Cursor(0), served)
    assert [t.tx_hash for t in new] == [f"0x{i}" for i in range(10)]


def test_duplicate_rows_in_one_read_are_taken_once() -> None:
    trades, _ = parse_trades(page() + page())  # paging can return a row twice
    new, cur = select_new(Cursor(1774749990), trades)
    assert len(new) == 4
    assert [t.timestamp for t in new] == sorted(t.timestamp for t in new)
    assert cur.ts == 1774750012


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from("abc"), st.sampled_from([1.0, 2.0])), max_size=30),
       st.integers(0, 30), st.integers(0, 30))
def test_any_split_into_polls_yields_each_trade_exactly_once(rows: list[tuple[int, str, float]], cut1: int,
                                                              cut2: int) -> None:
    # The venue's timeline: seconds only grow; one tx has one second; a row may be served twice.
    stream = sorted((trade(ts, f"0x{ts}{fill}", size) for ts, fill, size in rows), key=lambda t: t.timestamp)
    seen: list[Trade] = []
    cursor = Cursor(0)
    for visible in (stream[:min(cut1, cut2)], stream[:max(cut1, cut2)], stream):
        new, cursor = select_new(cursor, [t for t in visible if t.timestamp >= cursor.ts])  # start= is inclusive
        seen.extend(new)
    assert sorted(t.key_id for t in seen) == sorted({t.key_id for t in stream})


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 4), st.sampled_from("ab")), max_size=30),
       st.lists(st.integers(0, 40), min_size=1, max_size=6))
def test_late_indexed_trades_within_the_overlap_are_emitted_exactly_once(
        rows: list[tuple[int, int, str]], polls: list[int]) -> None:
    # A trade of second ts becomes visible at ts + lag (lag <= 4 <= overlap); polls happen at any
    # times. The seen-set stands for the collector's Redis one.
    stream = [(ts + lag, trade(ts, f"0x{ts}{fill}{lag}")) for ts, lag, fill in rows]
    seen: set[str] = set()
    cursor = Cursor(0)
    for now in [*sorted(polls), 10_000]:
        visible = [t for shown, t in stream if shown <= now and t.timestamp >= cursor.read_from(5)]
        new, cursor = select_new(cursor, sorted(visible, key=lambda t: -t.timestamp), overlap_sec=5)
        seen |= {t.key_id for t in new}
    assert seen == {t.key_id for _, t in stream}


def test_cursor_round_trips_through_its_hash() -> None:
    cur = Cursor(123, frozenset({"k1", "k2"}), floor=100)
    h = cur.to_hash(updated_ms=5)
    assert Cursor.from_hash(h) == cur
    # a cursor stored before ``floor`` existed: no overlap below its own second
    assert Cursor.from_hash({"ts": "123", "keys": "[]"}) == Cursor(123, floor=123)
    assert Cursor.from_hash({}) is None
    assert Cursor.from_hash({"ts": "x"}) is None


def test_min_size_filter() -> None:
    target = Target(account=WALLET, min_size=5)
    assert wanted(trade(1, size=5), target)
    assert not wanted(trade(1, size=4.99), target)


def test_signal_carries_the_trade_and_a_stable_id() -> None:
    trades, _ = parse_trades(page())
    t = trades[1]
    target = Target(account=WALLET.upper().replace("0X", "0x"))
    sig = to_signal(t, target, now_ms=1774750009000)
    assert sig == Signal(id=stable_id(WALLET, *t.key), ts_event=1774750006000, ts_init=1774750009000, producer="signal_collector",
                         side="BUY", token_id=YES, account=WALLET, size=120.5, price=0.47, source="poll",
                         condition_id=t.condition_id, slug="will-the-fed-cut-rates-in-june", outcome="Yes",
                         title="Will the Fed cut rates in June?", tx_hash=TX)
    assert to_signal(parse_trades(page())[0][1], target, now_ms=1).id == sig.id  # a re-read: same id
    assert decode(sig.encode()) == sig
    other = Target(account="0x" + "b" * 40)
    assert to_signal(t, other, now_ms=1).id != sig.id  # same fill, another followed wallet
    sell = to_signal(trades[0], target, now_ms=1)
    assert (sell.side, sell.size, sell.price) == ("SELL", 40.0, 0.55)
