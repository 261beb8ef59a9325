"""sim_exchange pure parts: markets, books, wire shapes, auth and order parsing."""

from __future__ import annotations

import json
import random

import pytest
from py_clob_client_v2 import OrderArgs
from py_clob_client_v2.clob_types import ApiCreds, CreateOrderOptions, RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.order_builder.builder import OrderBuilder
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.signer import Signer
from py_clob_client_v2.signing.hmac import build_hmac_signature
from py_clob_client_v2.utilities import generate_orderbook_summary_hash, parse_raw_orderbook_summary

from services.sim_exchange import wire
from services.sim_exchange.auth import Authenticator, AuthError, derive_key, hmac_signature
from services.sim_exchange.market import MarketSim, TokenBook, fill_ladder, make_markets, on_tick, set_levels
from services.sim_exchange.matching import OrderError
from services.sim_exchange.orders import order_hash_and_signer, parse_post
from shared.config import SIM_PRIVATE_KEY
from shared.venue.order_hash import EXCHANGE_V2


def test_markets_are_deterministic_and_shaped_like_real_ids() -> None:
    a, b, c = make_markets(7, 3), make_markets(7, 3), make_markets(8, 3)
    assert [m.condition_id for m in a] == [m.condition_id for m in b]
    assert [m.yes.token_id for m in a] != [m.yes.token_id for m in c]
    for m in a:
        assert m.condition_id.startswith("0x")
        assert len(m.condition_id) == 66
        int(m.condition_id, 16)
        for t in m.tokens:
            assert t.token_id.isdigit()
            assert 70 <= len(t.token_id) <= 78
        assert m.yes.mid + m.no.mid == pytest.approx(1.0)
    assert len({t.token_id for m in a for t in m.tokens}) == 6


def test_ladder_sits_around_the_mid_on_the_tick_grid() -> None:
    book = TokenBook("1", "0x" + "0" * 64, "Yes", 0, mid=0.537)
    fill_ladder(book, random.Random(1))
    bb, ba = book.best_bid(), book.best_ask()
    assert bb == 0.53
    assert ba == 0.55
    assert all(on_tick(p, 0.01) and 0.01 <= p <= 0.99 for p in [*book.bids, *book.asks])
    assert len(book.bids) == len(book.asks) == 8
    edge = TokenBook("2", "0x", "Yes", 0, mid=0.02)
    fill_ladder(edge, random.Random(1))
    assert min(edge.bids) >= 0.01
    assert edge.best_bid() == 0.01


def test_walk_keeps_yes_plus_no_near_one_and_respects_freeze() -> None:
    sim = MarketSim(seed=3, count=2, volatility=0.02)
    frozen = sim.markets[1].yes
    frozen.frozen = True
    before = dict(frozen.bids)
    for _ in range(50):
        changed = sim.step()
        assert frozen.token_id not in changed
    for m in sim.markets:
        assert m.yes.mid + m.no.mid == pytest.approx(1.0, abs=0.1)
        assert 0.03 <= m.yes.mid <= 0.97
    assert frozen.bids == before


def test_set_levels_replaces_book_and_mid() -> None:
    book = TokenBook("1", "0x", "Yes", 0, mid=0.5)
    set_levels(book, [(0.40, 10), (0.42, 5), (0.41, 0)], [(0.47, 7)])
    assert book.bids == {0.40: 10.0, 0.42: 5.0}
    assert book.asks == {0.47: 7.0}
    assert book.mid == pytest.approx(0.445)


def test_book_json_best_last_strings_and_client_compatible_hash() -> None:
    book = TokenBook("123", "0xabc", "Yes", 0, mid=0.5)
    out = wire.book_json(book, {0.48: 10.0, 0.49: 20.5}, {0.52: 3.0, 0.51: 4.0}, ts=1700000000.123)
    assert [b["price"] for b in out["bids"]] == ["0.48", "0.49"]
    assert [a["price"] for a in out["asks"]] == ["0.52", "0.51"]
    assert out["bids"][-1] == {"price": "0.49", "size": "20.5"}
    assert out["timestamp"] == "1700000000123"
    assert out["tick_size"] == "0.01"
    assert out["min_order_size"] == "5"
    assert out["hash"] == generate_orderbook_summary_hash(parse_raw_orderbook_summary(out))


def test_price_change_entries_carry_new_aggregate_and_top_of_book() -> None:
    old = ({0.49: 10.0, 0.48: 5.0}, {0.51: 7.0})
    new = ({0.49: 4.0}, {0.51: 7.0, 0.52: 1.0})
    entries = wire.price_change_entries("t", old, new)
    by_key = {(e["side"], e["price"]): e for e in entries}
    assert by_key[("BUY", "0.48")]["size"] == "0"
    assert by_key[("BUY", "0.49")]["size"] == "4"
    assert by_key[("SELL", "0.52")]["size"] == "1"
    assert len(entries) == 3
    assert all(e["best_bid"] == "0.49" and e["best_ask"] == "0.51" for e in entries)


def test_hmac_matches_the_client_and_l2_checks_it() -> None:
    key = derive_key("0xAbC0000000000000000000000000000000000001", 0)
    body = json.dumps({"orderID": "0x1"}, separators=(",", ":"))
    assert hmac_signature(key.secret, "1700000000", "DELETE", "/order", body) == \
        build_hmac_signature(key.secret, "1700000000", "DELETE", "/order", body)
    signer = Signer(SIM_PRIVATE_KEY, 137)
    auth = Authenticator()
    issued = auth.l1(create_level_1_headers(signer, nonce=0))
    assert issued.address == signer.address().lower()
    assert issued == derive_key(signer.address(), 0)
    creds = ApiCreds(issued.key, issued.secret, issued.passphrase)
    headers = create_level_2_headers(signer, creds, RequestArgs("DELETE", "/order", {"orderID": "0x1"}, body))
    assert auth.l2(headers, "DELETE", "/order", body) == issued
    with pytest.raises(AuthError, match="Unauthorized/Invalid api key"):
        auth.l2(headers, "DELETE", "/order", body.replace("0x1", "0x2"))
    with pytest.raises(AuthError, match="Unauthorized/Invalid api key"):
        auth.l2({**headers, "POLY_API_KEY": "not-issued"}, "DELETE", "/order", body)


def test_l1_rejects_a_signature_for_another_address() -> None:
    headers = create_level_1_headers(Signer(SIM_PRIVATE_KEY, 137), nonce=0)
    headers["POLY_ADDRESS"] = "0x" + "1" * 40
    with pytest.raises(AuthError, match="Invalid L1 Request headers"):
        Authenticator().l1(headers)


def _signed_order(price: float, size: float, side: str) -> tuple[dict[str, object], str]:
    signer = Signer(SIM_PRIVATE_KEY, 137)
    order = OrderBuilder(signer).build_order(OrderArgs(token_id="1234567890", price=price, size=size, side=side),
                                             CreateOrderOptions(tick_size="0.01", neg_risk=False), version=2)
    typed = ExchangeOrderBuilderV2(EXCHANGE_V2, 137, signer).build_order_typed_data(order)
    expected_hash = ExchangeOrderBuilderV2(EXCHANGE_V2, 137, signer).build_order_hash(typed)
    return order_to_json_v2(order, "owner-key", "GTC"), expected_hash


def test_parse_post_derives_side_price_size_and_recovers_the_signer() -> None:
    key = derive_key(Signer(SIM_PRIVATE_KEY, 137).address(), 0)
    payload, expected_hash = _signed_order(0.37, 12.5, "BUY")
    payload["owner"] = key.key
    order_id, signer = order_hash_and_signer(payload["order"])  # type: ignore[arg-type]
    assert order_id == expected_hash
    assert signer == key.address
    req = parse_post(payload, key)
    assert (req.side, req.price, req.size, req.order_id) == ("BUY", 0.37, 12.5, expected_hash)
    sell, _ = _signed_order(0.61, 7, "SELL")
    sell["owner"] = key.key
    assert (lambda r: (r.side, r.price, r.size))(parse_post(sell, key)) == ("SELL", 0.61, 7.0)


def test_parse_post_rejects_tampering_and_foreign_owner() -> None:
    key = derive_key(Signer(SIM_PRIVATE_KEY, 137).address(), 0)
    payload, _ = _signed_order(0.37, 10, "BUY")
    payload["owner"] = "someone-else"
    with pytest.raises(OrderError, match="owner has to be the owner of the API KEY"):
        parse_post(payload, key)
    payload["owner"] = key.key
    payload["order"]["makerAmount"] = "1"  # type: ignore[index]
    with pytest.raises(OrderError, match="invalid signature"):
        parse_post(payload, key)
