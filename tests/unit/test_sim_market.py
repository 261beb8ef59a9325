"""sim_exchange pure parts: markets, books, wire shapes, auth and order parsing."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any, Literal

import pytest
from eth_account import Account
from polymarket._internal.actions.auth import build_l1_auth_headers
from polymarket._internal.hmac import build_hmac_signature
from polymarket._internal.l1_auth import sign_api_key_auth
from polymarket.clients.async_secure import _make_l2_header_resolver
from polymarket.models import ApiKeyCreds
from polymarket.models.clob.order_book import OrderBook

from services.sim_exchange import wire
from services.sim_exchange.auth import Authenticator, AuthError, derive_key, hmac_signature
from services.sim_exchange.market import MarketSim, TokenBook, fill_ladder, make_markets, on_tick, set_levels
from services.sim_exchange.matching import OrderError
from services.sim_exchange.orders import parse_post
from services.sim_exchange.signatures import Exchange, recover_ecdsa
from services.sim_exchange.state import SimState
from shared.config import SIM_ADDRESS, SIM_PRIVATE_KEY, SimExchangeSection
from tests.unit.sdk_orders import sdk_order_id, sdk_payload


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


def venue_book_hash(book: dict[str, Any]) -> str:
    """The venue's book hash as Polymarket's Python CLOB client recomputed it
    (``generate_orderbook_summary_hash``): SHA-1 of the compact JSON of the summary in this key
    order, with ``hash`` empty."""
    keys = ("market", "asset_id", "timestamp", "hash", "bids", "asks", "min_order_size", "tick_size", "neg_risk",
            "last_trade_price")
    payload = {k: "" if k == "hash" else book[k] for k in keys}
    return hashlib.sha1(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def test_book_json_best_last_strings_and_client_compatible_hash() -> None:
    book = TokenBook("123", "0xabc", "Yes", 0, mid=0.5)
    out = wire.book_json(book, {0.48: 10.0, 0.49: 20.5}, {0.52: 3.0, 0.51: 4.0}, ts=1700000000.123)
    assert [b["price"] for b in out["bids"]] == ["0.48", "0.49"]
    assert [a["price"] for a in out["asks"]] == ["0.52", "0.51"]
    assert out["bids"][-1] == {"price": "0.49", "size": "20.5"}
    assert out["timestamp"] == "1700000000123"
    assert out["tick_size"] == "0.01"
    assert out["min_order_size"] == "5"
    assert out["hash"] == venue_book_hash(out)
    assert OrderBook.model_validate(out).hash == out["hash"]  # the official SDK reads it as it is


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


async def test_hmac_matches_the_client_and_l2_checks_it() -> None:
    key = derive_key("0xAbC0000000000000000000000000000000000001", 0)
    body = json.dumps({"orderID": "0x1"}, separators=(",", ":"))
    assert hmac_signature(key.secret, "1700000000", "DELETE", "/order", body) == \
        build_hmac_signature(secret=key.secret, timestamp=1700000000, method="DELETE", path="/order", body=body)
    signer = Account.from_key(SIM_PRIVATE_KEY)
    auth = Authenticator()
    issued = auth.l1(build_l1_auth_headers(sign_api_key_auth(signer, chain_id=137, timestamp=1700000000)))
    assert issued.address == signer.address.lower()
    assert issued == derive_key(signer.address, 0)
    creds = ApiKeyCreds(key=issued.key, secret=issued.secret, passphrase=issued.passphrase)
    headers = dict(await _make_l2_header_resolver(signer, creds)("DELETE", "/order", body))
    assert auth.l2(headers, "DELETE", "/order", body) == issued
    with pytest.raises(AuthError, match="Unauthorized/Invalid api key"):
        auth.l2(headers, "DELETE", "/order", body.replace("0x1", "0x2"))
    with pytest.raises(AuthError, match="Unauthorized/Invalid api key"):
        auth.l2({**headers, "POLY_API_KEY": "not-issued"}, "DELETE", "/order", body)
    # the body exactly as sent, not the variant the archived CLOB client signed (' turned into ")
    quoted = json.dumps({"orderID": "0x1", "note": "it's"}, separators=(",", ":"))
    swapped = dict(await _make_l2_header_resolver(signer, creds)("DELETE", "/order", quoted.replace("'", '"')))
    with pytest.raises(AuthError, match="Unauthorized/Invalid api key"):
        auth.l2(swapped, "DELETE", "/order", quoted)


def test_l1_rejects_a_signature_for_another_address() -> None:
    headers = build_l1_auth_headers(sign_api_key_auth(Account.from_key(SIM_PRIVATE_KEY), chain_id=137,
                                                      timestamp=1700000000))
    headers["POLY_ADDRESS"] = "0x" + "1" * 40
    with pytest.raises(AuthError, match="Invalid L1 Request headers"):
        Authenticator().l1(headers)


def _signed_order(state: SimState, price: str, size: str, side: Literal["BUY", "SELL"],
                  owner: str) -> tuple[dict[str, Any], str]:
    """A POST /order body of the sim key's EOA (type 0) on the first (v1) market, signed by the SDK's
    code for the sim's standard exchange, and its id as the SDK hashes it."""
    exchange = state.env.address("standard_exchange")
    shares, cash = int(float(size) * 1e6), round(float(size) * float(price) * 1e6)
    maker, taker = (cash, shares) if side == "BUY" else (shares, cash)
    payload = sdk_payload(SIM_PRIVATE_KEY, SIM_ADDRESS, 0, state.sim.markets[0].yes.token_id, exchange, "2",
                          owner=owner, maker_amount=maker, taker_amount=taker, side=side)
    return payload, sdk_order_id(payload["order"], exchange, "2")


def _state() -> SimState:
    return SimState(SimExchangeSection(markets=2, v2_share=0.5, volatility=0.0), 137)


def test_parse_post_derives_side_price_size_and_recovers_the_signer() -> None:
    state = _state()
    key = derive_key(SIM_ADDRESS, 0)

    def check(order: dict[str, Any]) -> str:
        return state.signers.check(order, key.address)

    payload, expected_hash = _signed_order(state, "0.37", "12.5", "BUY", key.key)
    exchange = Exchange(state.env.address("standard_exchange"), "2")
    assert recover_ecdsa(payload["order"], exchange, 137) == key.address
    req = parse_post(payload, key, check)
    assert (req.side, req.price, req.size, req.order_id) == ("BUY", 0.37, 12.5, expected_hash)
    sell, _ = _signed_order(state, "0.61", "7", "SELL", key.key)
    assert (lambda r: (r.side, r.price, r.size))(parse_post(sell, key, check)) == ("SELL", 0.61, 7.0)


def test_parse_post_rejects_tampering_and_foreign_owner() -> None:
    state = _state()
    key = derive_key(SIM_ADDRESS, 0)

    def check(order: dict[str, Any]) -> str:
        return state.signers.check(order, key.address)

    payload, _ = _signed_order(state, "0.37", "10", "BUY", "someone-else")
    with pytest.raises(OrderError, match="owner has to be the owner of the API KEY"):
        parse_post(payload, key, check)
    payload["owner"] = key.key
    payload["order"]["makerAmount"] = "1"
    with pytest.raises(OrderError, match="invalid signature"):
        parse_post(payload, key, check)
