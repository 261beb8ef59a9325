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
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import ConfigError, load_settings
from shared.messages import MessageError, decode
from shared.venue.data_api import BadTrade, parse_trade, parse_trades
from shared.venue.gamma import BadMarket, parse_market, parse_markets
from shared.venue.live_data import BadFrame, parse_frame
from shared.venue.market_ws import MarketFrameError, decode_frame, decode_rest_book

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


def data_api_rows() -> st.SearchStrategy[Any]:
    base = fixture("data_api_trades.json")
    return st.one_of(mutated(base), JSON)


@FUZZ
@given(data_api_rows())
def test_data_api_rows(rows: Any) -> None:
    if isinstance(rows, list):
        trades, bad = parse_trades(rows)
        assert len(trades) + len(bad) == len(rows)
    with contextlib.suppress(BadTrade):
        parse_trade(rows[0] if isinstance(rows, list) and rows else rows)


def ws_frames() -> st.SearchStrategy[str]:
    names = ["ws_book.json", "ws_price_change.json", "ws_price_change_legacy.json", "ws_last_trade_price.json",
             "ws_tick_size_change.json", "ws_best_bid_ask.json"]
    bases = st.sampled_from(names).flatmap(lambda n: mutated(fixture(n)))
    as_text = st.one_of(bases, JSON).map(lambda v: json.dumps(v, allow_nan=True))
    return st.one_of(as_text, st.text(max_size=200), st.sampled_from(["PONG", "", "[", "{}", "[]", "null"]))


@FUZZ
@given(ws_frames())
def test_market_websocket_frames(text: str) -> None:
    with contextlib.suppress(MarketFrameError):
        decode_frame(text)


@FUZZ
@given(st.one_of(mutated(fixture("ws_book.json")), JSON))
def test_rest_books(obj: Any) -> None:
    body = obj[0] if isinstance(obj, list) and obj else obj
    with contextlib.suppress(MarketFrameError):
        decode_rest_book(body)


def live_frames() -> st.SearchStrategy[str]:
    base = fixture("rtds_activity_trades.json")
    as_text = st.one_of(mutated(base), JSON).map(lambda v: json.dumps(v, allow_nan=True))
    return st.one_of(as_text, st.text(max_size=200), st.sampled_from(["pong", "ping", "", "[1,2]"]))


@FUZZ
@given(live_frames())
def test_live_data_frames(text: str) -> None:
    with contextlib.suppress(BadFrame):
        parse_frame(text)


@FUZZ
@given(st.one_of(mutated(fixture("gamma_markets.json")), JSON))
def test_gamma_markets(rows: Any) -> None:
    markets, bad = parse_markets(rows)
    if isinstance(rows, list):
        assert len(markets) + len(bad) == len(rows)
    with contextlib.suppress(BadMarket):
        parse_market(rows[0] if isinstance(rows, list) and rows else rows)


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
        decode(fields)
