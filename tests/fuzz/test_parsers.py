"""Fuzzing every parser of outside input (H5): nothing crashes, bad input is refused with the
parser's own error (and counted by its caller), never with anything else.

Inputs are the documented fixtures mutated field by field (values replaced by other JSON types,
keys dropped, numbers as strings, huge and negative numbers, unicode), plus arbitrary JSON and
arbitrary text. ``PF_FUZZ_EXAMPLES`` sets how many examples each test tries (default 300 in the
suite; the figures in docs/reliability.md come from a long run, e.g. ``PF_FUZZ_EXAMPLES=20000
uv run pytest -q tests/fuzz``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import ConfigError, load_settings
from shared.messages import MessageError, decode
from shared.venue.data_api import BadTrade, Trade, parse_trade, parse_trades
from shared.venue.gamma import BadMarket, parse_market, parse_markets
from shared.venue.live_data import BadFrame, parse_frame
from shared.venue.market_ws import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    MarketEvent,
    MarketFrameError,
    PriceChangeBatch,
    TickSizeChange,
    decode_frame,
    decode_rest_book,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "polymarket"
EXAMPLES = int(os.environ.get("PF_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1e308", "NaN", "inf", "0.5", "BUY", "SELL", "buy", "0x", "null", "[]", "{}"]),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)


def a_price(p: float) -> bool:
    return math.isfinite(p) and 0.0 <= p <= 1.0


def a_size(x: float) -> bool:
    return math.isfinite(x) and x >= 0.0


def check_trade(t: Trade) -> None:
    """What the Data API and live-data parsers promise of a trade they accept."""
    assert t.side in ("BUY", "SELL")
    assert t.token_id
    assert math.isfinite(t.price)
    assert 0.0 < t.price <= 1.0
    assert math.isfinite(t.size)
    assert t.size > 0
    assert t.timestamp > 0


def check_book(b: BookSnapshot) -> None:
    assert b.asset_id
    assert all(a_price(lv.price) and a_size(lv.size) for lv in (*b.bids, *b.asks))
    assert b.last_trade_price is None or a_price(b.last_trade_price)
    assert b.tick_size is None or math.isfinite(b.tick_size)


def check_market_event(ev: MarketEvent) -> None:
    """What the market-channel decoder promises of an event it accepts: finite prices in [0, 1],
    finite sizes that are not negative."""
    if isinstance(ev, BookSnapshot):
        check_book(ev)
    elif isinstance(ev, PriceChangeBatch):
        for ch in ev.changes:
            assert ch.asset_id
            assert ch.side in ("BUY", "SELL")
            assert a_price(ch.price)
            assert a_size(ch.size)
            assert all(p is None or a_price(p) for p in (ch.best_bid, ch.best_ask))
    elif isinstance(ev, LastTrade):
        assert a_price(ev.price)
        assert a_size(ev.size)
    elif isinstance(ev, BestBidAsk):
        assert all(p is None or a_price(p) for p in (ev.best_bid, ev.best_ask))
    elif isinstance(ev, TickSizeChange):
        assert math.isfinite(ev.new_tick_size)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with a few of its values replaced, keys dropped or added, at any depth."""
    def walk(node: Any, depth: int) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                action = draw(st.integers(0, 9))
                if action == 0:
                    continue  # drop the key
                out[key] = draw(JSON) if action == 1 else walk(value, depth + 1)
            if draw(st.integers(0, 9)) == 0:
                out[draw(st.text(max_size=10))] = draw(JSON)
            return out
        if isinstance(node, list):
            items = [walk(v, depth + 1) for v in node if draw(st.integers(0, 9)) != 0]
            if draw(st.integers(0, 9)) == 0:
                items.append(draw(JSON))
            return items
        action = draw(st.integers(0, 5))
        if action == 0:
            return draw(JSON)
        if action == 1 and isinstance(node, int | float) and not isinstance(node, bool):
            return str(node)  # numbers as strings, as the APIs often send them
        if action == 2 and isinstance(node, str):
            return node + draw(st.text(max_size=5))
        return node
    return walk(base, 0)


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))]
    return [path]


# What a number field may hold on the wire: in and out of range, as JSON numbers or strings.
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
                    st.floats(-2.0, 3.0).map(str), st.sampled_from(["-0.01", "1.01", "1e308", "NaN", "-inf", "1", "0"]))


@st.composite
def one_change(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with ONE value replaced (by a number, most often): the rest stays well formed, so
    the parser mostly accepts it, and what it accepts can be checked."""
    out = json.loads(json.dumps(base))
    path = draw(st.sampled_from(_leaves(out)))
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = draw(st.one_of(NUMBERS, NUMBERS, SCALARS))
    return out


def data_api_rows() -> st.SearchStrategy[Any]:
    base = fixture("data_api_trades.json")
    return st.one_of(mutated(base), one_change(base), JSON)


@FUZZ
@given(data_api_rows())
def test_data_api_rows(rows: Any) -> None:
    if isinstance(rows, list):
        trades, bad = parse_trades(rows)
        assert len(trades) + len(bad) == len(rows)
        for t in trades:
            check_trade(t)
    with contextlib.suppress(BadTrade):
        check_trade(parse_trade(rows[0] if isinstance(rows, list) and rows else rows))


def ws_frames() -> st.SearchStrategy[str]:
    names = ["ws_book.json", "ws_price_change.json", "ws_price_change_legacy.json", "ws_last_trade_price.json",
             "ws_tick_size_change.json", "ws_best_bid_ask.json"]
    bases = st.sampled_from(names).flatmap(lambda n: st.one_of(mutated(fixture(n)), one_change(fixture(n))))
    as_text = st.one_of(bases, JSON).map(lambda v: json.dumps(v, allow_nan=True))
    return st.one_of(as_text, st.text(max_size=200), st.sampled_from(["PONG", "", "[", "{}", "[]", "null"]))


@FUZZ
@given(ws_frames())
def test_market_websocket_frames(text: str) -> None:
    try:
        events = decode_frame(text)
    except MarketFrameError as exc:
        events = list(exc.events)  # what did decode: the caller may still apply it
    for ev in events:
        check_market_event(ev)


@FUZZ
@given(st.one_of(mutated(fixture("ws_book.json")), one_change(fixture("ws_book.json")), JSON))
def test_rest_books(obj: Any) -> None:
    body = obj[0] if isinstance(obj, list) and obj else obj
    with contextlib.suppress(MarketFrameError):
        check_book(decode_rest_book(body))


def live_frames() -> st.SearchStrategy[str]:
    base = fixture("rtds_activity_trades.json")
    as_text = st.one_of(mutated(base), one_change(base), JSON).map(lambda v: json.dumps(v, allow_nan=True))
    return st.one_of(as_text, st.text(max_size=200), st.sampled_from(["pong", "ping", "", "[1,2]"]))


@FUZZ
@given(live_frames())
def test_live_data_frames(text: str) -> None:
    with contextlib.suppress(BadFrame):
        trades, _ = parse_frame(text)
        for live in trades:
            assert live.kind in ("trades", "orders_matched")
            check_trade(live.trade)


@FUZZ
@given(st.one_of(mutated(fixture("gamma_markets.json")), one_change(fixture("gamma_markets.json")), JSON))
def test_gamma_markets(rows: Any) -> None:
    markets, bad = parse_markets(rows)
    if isinstance(rows, list):
        assert len(markets) + len(bad) == len(rows)
    with contextlib.suppress(BadMarket):
        markets.append(parse_market(rows[0] if isinstance(rows, list) and rows else rows))
    for m in markets:  # one outcome per token, numbers finite (Gamma's prices are display values, not ranged)
        assert m.token_ids
        assert len(m.outcomes) == len(m.token_ids) == len(m.prices)
        assert all(p is None or math.isfinite(p) for p in m.prices)
        assert math.isfinite(m.volume)
        assert math.isfinite(m.liquidity)
        assert all(x is None or math.isfinite(x) for x in (m.tick_size, m.min_order_size))


@FUZZ
@given(content=st.one_of(JSON, st.dictionaries(st.sampled_from(["scheduler", "risk", "copytrade", "mode", "workers",
                                                                 "gateway", "maker_strategy", "logging", "api"]),
                                               JSON, max_size=4)),
       as_yaml=st.booleans())
def test_config_files(content: Any, as_yaml: bool, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("cfg") / "polyfleet.yaml"
    text = yaml.safe_dump(content) if as_yaml else json.dumps(content, allow_nan=True)
    path.write_text(text)
    with contextlib.suppress(ConfigError):
        load_settings(path, {})


@FUZZ
@given(st.dictionaries(st.sampled_from(["type", "v", "id", "ts_event", "ts_init", "producer", "side", "token_id",
                                        "account", "size", "price", "source", "action", "epoch", "params",
                                        "status", "kind", "detail", "target"]) | st.text(max_size=8),
                       st.text(max_size=30) | st.sampled_from(["signal", "cmd", "1", "2", "BUY", "{}", "[]"]),
                       max_size=12))
def test_stream_entries(fields: dict[str, str]) -> None:
    with contextlib.suppress(MessageError):
        msg = decode(fields)
        # the type and version the entry claims, under the id it carries
        assert (msg.TYPE, msg.VERSION, msg.id) == (fields["type"], int(fields["v"]), fields["id"])
