"""The venue room's order side (shared/venue/account.py, orders.py) against sim_exchange: the real
process, the unmodified official SDK underneath; the sim's legacy EOA and a fresh deposit wallet,
on v1 (CTF) and v2 (Protocol V2) markets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness import SimExchangeProcess
from shared.config import Secrets, load_settings
from shared.venue.account import VenueAccount, open_account
from shared.venue.amounts import AmountRefused
from shared.venue.environment import fetch_sim_environment
from shared.venue.errors import VenueAmbiguous, VenueNotSent, VenueRejected, VenueUnavailable
from shared.venue.ids import outcome
from shared.venue.orders import OrderMarket, VenueOrders


@dataclass
class Room:
    sim: SimExchangeProcess
    http: httpx.AsyncClient
    account: VenueAccount
    orders: VenueOrders
    tokens: dict[str, dict[str, Any]]  # token -> its market's version, tick_size and min_size, from the sim

    def token(self, version: str = "v1", index: int = 0, tick: float = 0.01, min_size: float = 5.0) -> str:
        """The YES token of the ``index``-th market of ``version`` with this tick and minimum size."""
        return [t for t, m in self.tokens.items() if (m["version"], m["tick_size"], m["min_size"], m["yes"])
                == (version, tick, min_size, True)][index]

    def market(self, token: str, min_size: float | None = None) -> OrderMarket:
        m = self.tokens[token]
        return OrderMarket(outcome(token, m["version"]), False, m["min_size"] if min_size is None else min_size)

    async def book(self, token: str, bids: list[list[float]], asks: list[list[float]]) -> None:
        resp = await self.http.put(f"/_sim/book/{token}", json={"bids": bids, "asks": asks, "freeze": True})
        assert resp.status_code == 200, resp.text

    async def sim_orders(self, token: str) -> list[dict[str, Any]]:
        return list((await self.http.get("/_sim/orders", params={"token_id": token})).json())

    async def fault(self, **body: Any) -> None:
        assert (await self.http.post("/_sim/fault", json=body)).status_code == 200


async def open_room(sim: SimExchangeProcess, wallet: str) -> Room:
    http = httpx.AsyncClient(base_url=sim.url, timeout=15)
    env = await fetch_sim_environment(sim.url)
    settings = load_settings(sim.env["PF_CONFIG"], environ={"PF__POLYMARKET__WALLET": wallet})
    account = await open_account(settings, Secrets(), env)
    markets = (await http.get("/_sim/markets")).json()
    tokens = {t["token_id"]: {"version": m["version"], "tick_size": t["tick_size"], "min_size": t["min_size"],
                              "yes": i == 0}
              for m in markets if not m["neg_risk"] for i, t in enumerate(m["tokens"])}
    return Room(sim, http, account, VenueOrders(account), tokens)


@pytest.fixture
async def room(start_sim: Callable[..., SimExchangeProcess]) -> AsyncIterator[Room]:
    """The sim's legacy EOA (an allowed maker), on a sim with v1 and v2 markets."""
    got = await open_room(start_sim({"sim_exchange": {"markets": 12, "volatility": 0.0}}), "eoa")
    yield got
    await got.account.close()
    await got.http.aclose()


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_limit_order_rests_is_read_back_and_cancelled(room: Room, version: str) -> None:
    token = room.token(version)
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    m = room.market(token)
    ack = await room.orders.place_limit(m, "BUY", 0.30, 5, 0.01)
    assert (ack.status, ack.shares) == ("live", 0.0)
    seen = await room.orders.order(ack.order_id)
    assert seen is not None
    assert (seen.status, seen.price, seen.original_size, seen.size_matched) == ("LIVE", 0.30, 5.0, 0.0)
    assert [o.order_id for o in await room.orders.open_orders(m.outcome)] == [ack.order_id]
    assert await room.orders.cancel(ack.order_id)
    gone = await room.orders.order(ack.order_id)
    assert gone is not None
    assert gone.status == "CANCELED"
    assert await room.orders.open_orders(m.outcome) == []
    # cancelling an outcome's orders takes every resting one of this account on it, and only there
    first = await room.orders.place_limit(m, "BUY", 0.31, 5, 0.01)
    second = await room.orders.place_limit(m, "BUY", 0.32, 5, 0.01)
    other_token = next(t for t, m in room.tokens.items() if m["yes"] and m["version"] == version and t != token)
    other = room.market(other_token)
    kept = await room.orders.place_limit(other, "BUY", 0.05, other.min_size, room.tokens[other_token]["tick_size"])
    assert set(await room.orders.cancel_outcome(m.outcome)) == {first.order_id, second.order_id}
    assert [o.order_id for o in await room.orders.open_orders(other.outcome)] == [kept.order_id]
    assert await room.orders.order("0x" + "00" * 32) is None


async def test_post_only_rests_and_a_crossing_one_is_refused(room: Room) -> None:
    token = room.token()
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    m = room.market(token)
    rests = await room.orders.place_limit(m, "BUY", 0.41, 5, 0.01, post_only=True)
    assert rests.status == "live"
    with pytest.raises(VenueRejected, match="crosses book"):
        await room.orders.place_limit(m, "BUY", 0.45, 5, 0.01, post_only=True)
    assert [o["id"] for o in await room.sim_orders(token)] == [rests.order_id]


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_marketable_orders_carry_exact_amounts_and_fill(room: Room, version: str) -> None:
    token = room.token(version)
    m = room.market(token)
    await room.book(token, [[0.50, 100]], [[0.57, 100]])
    # $1.05 at 0.57 is 1.8421 shares: a limit order of that size would carry 5 decimals of collateral
    buy = await room.orders.place_marketable(m, "BUY", 0.57, None, 0.01, budget=1.05)
    assert (buy.status, buy.shares, buy.avg_price) == ("matched", 1.8421, 0.57)
    assert await room.orders.position(m.outcome) == pytest.approx(1.8421)
    trades = await room.orders.trades(m.outcome)
    assert [(t.side, t.size, t.trader_side, t.order_ids) for t in trades] == [("BUY", 1.8421, "TAKER",
                                                                                 (buy.order_id,))]
    assert trades[0].status in ("MATCHED", "MINED", "CONFIRMED")
    # a SELL on a 0.001-tick market: 15.55 x 0.123 = 1.91265 has five decimals; the taker amount keeps four
    await room.fault(kind="tick_size_change", token_id=token, new_tick_size=0.001)
    await room.http.put(f"/_sim/accounts/{room.account.wallet}", json={"positions": {token: 20}})
    await room.book(token, [[0.123, 100]], [[0.2, 100]])
    sell = await room.orders.place_marketable(m, "SELL", 0.123, 15.55, 0.001, order_type="FOK")
    assert (sell.status, sell.shares) == ("matched", 15.55)
    assert sell.avg_price == pytest.approx(0.123, abs=1e-4)
    assert await room.orders.position(m.outcome) == pytest.approx(4.45)
    assert await room.orders.cash() > 0


async def test_minimums_refuse_before_anything_is_sent(room: Room) -> None:
    token = room.token()
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    with pytest.raises(AmountRefused, match="minimum order size 15"):
        await room.orders.place_limit(room.market(token, min_size=15), "BUY", 0.30, 10, 0.01)
    with pytest.raises(AmountRefused, match=r"\$1 minimum"):
        await room.orders.place_marketable(room.market(token), "BUY", 0.45, 2, 0.01)
    assert await room.sim_orders(token) == []


async def test_a_closed_send_gate_sends_nothing(room: Room) -> None:
    token = room.token()
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    with pytest.raises(VenueNotSent):
        await room.orders.place_limit(room.market(token), "BUY", 0.30, 5, 0.01, may_send=lambda: False)
    assert await room.sim_orders(token) == []


async def test_a_resent_order_is_duplicated_and_its_id_is_the_hash_computed_here(room: Room) -> None:
    token = room.token()
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    m = room.market(token)
    from shared.venue.amounts import limit_amounts

    signed = await room.orders.sign(m, limit_amounts("BUY", 0.30, 5, 0.01), "GTC")
    first = await room.orders.post(m, signed)
    again = await room.orders.post(m, signed)  # a retried POST of the very same signed order
    assert "Duplicated" in again.note
    assert again.order_id == first.order_id == room.orders.order_id(m, signed)
    assert len(await room.sim_orders(token)) == 1


async def test_a_5xx_after_sending_is_ambiguous_and_names_the_order(room: Room) -> None:
    token = room.token()
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    await room.fault(kind="http_429", count=1, retry_after=0, path_prefix="/order", status=502)
    with pytest.raises(VenueAmbiguous) as caught:
        await room.orders.place_limit(room.market(token), "BUY", 0.30, 5, 0.01)
    assert caught.value.order_id.startswith("0x")
    assert len(caught.value.order_id) == 66
    assert await room.orders.order(caught.value.order_id) is None  # asked about: it never arrived


async def test_a_429_is_unavailable_and_holds_the_signer_back(room: Room) -> None:
    token = room.token()
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    await room.fault(kind="http_429", count=1, retry_after=3, path_prefix="/order")
    with pytest.raises(VenueUnavailable) as caught:
        await room.orders.place_limit(room.market(token), "BUY", 0.30, 5, 0.01)
    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)
    assert room.account.rate.wait_s() > 2.0
    assert await room.sim_orders(token) == []


async def test_position_cash_and_heartbeats(room: Room) -> None:
    token = room.token("v2")
    await room.http.put(f"/_sim/accounts/{room.account.wallet}", json={"cash": 123.45, "positions": {token: 7.5}})
    assert await room.orders.position(room.market(token).outcome) == 7.5
    assert await room.orders.cash() == 123.45
    first = await room.orders.heartbeat()
    assert first
    assert await room.orders.heartbeat(first)


async def test_a_deposit_wallet_account_is_created_and_trades_both_systems(
        start_sim: Callable[..., SimExchangeProcess]) -> None:
    """polymarket.wallet: deposit, no relayer key configured: in sim mode the account mints a builder
    key from the sim, the SDK creates the key's deposit wallet through the relayer, and orders go
    out with signature type 3 (maker = signer = the wallet)."""
    room = await open_room(start_sim({"sim_exchange": {"markets": 12, "volatility": 0.0}}), "deposit")
    try:
        wallet = room.account.wallet
        assert wallet.lower() != room.account.signer.lower()
        assert room.account.signature_type == 3
        deployed = (await room.http.get("/_sim/wallets", params={"owner": room.account.signer.lower()})).json()
        assert [(w["address"], w["kind"]) for w in deployed] == [(wallet.lower(), "deposit")]
        for version in ("v1", "v2"):
            token = room.token(version)
            m = room.market(token)
            await room.book(token, [[0.40, 100]], [[0.45, 100]])
            resting = await room.orders.place_limit(m, "BUY", 0.30, 5, 0.01)
            assert [(o.order_id, o.status) for o in await room.orders.open_orders(m.outcome)] == \
                [(resting.order_id, "LIVE")]
            assert await room.orders.cancel(resting.order_id)
            bought = await room.orders.place_marketable(m, "BUY", 0.45, None, 0.01, budget=1.01, order_type="FOK")
            assert (bought.status, bought.shares) == ("matched", 2.2444)  # $1.01 / 0.45, four decimals
            assert await room.orders.position(m.outcome) == pytest.approx(2.2444)
            assert {o["maker_address"].lower() for o in await room.sim_orders(token)} == {wallet.lower()}
    finally:
        await room.account.close()
        await room.http.aclose()


async def test_processes_of_one_account_starting_together_share_one_deposit_wallet(
        start_sim: Callable[..., SimExchangeProcess]) -> None:
    """Workers of one account start together: each finds the wallet missing, one creation wins, the
    other is refused; it opens once more and finds the wallet deployed."""
    sim = start_sim({"sim_exchange": {"markets": 2, "volatility": 0.0}})
    env = await fetch_sim_environment(sim.url)
    settings = load_settings(sim.env["PF_CONFIG"], environ={})
    accounts = await asyncio.gather(*(open_account(settings, Secrets(), env) for _ in range(3)))
    try:
        assert len({a.wallet for a in accounts}) == 1
        async with httpx.AsyncClient(base_url=sim.url) as http:
            deployed = (await http.get("/_sim/wallets", params={"owner": accounts[0].signer.lower()})).json()
        assert [w["address"] for w in deployed] == [accounts[0].wallet.lower()]
    finally:
        await asyncio.gather(*(a.close() for a in accounts))


async def test_a_refused_wallet_creation_is_tried_once_more(start_sim: Callable[..., SimExchangeProcess]) -> None:
    """What the process that loses that race sees: its WALLET-CREATE refused. It opens once more."""
    sim = start_sim({"sim_exchange": {"markets": 2, "volatility": 0.0}})
    async with httpx.AsyncClient(base_url=sim.url) as http:
        fault = {"kind": "http_429", "count": 1, "retry_after": 0, "path_prefix": "/relayer/submit", "status": 400}
        assert (await http.post("/_sim/fault", json=fault)).status_code == 200
        account = await open_account(load_settings(sim.env["PF_CONFIG"], environ={}), Secrets(),
                                     await fetch_sim_environment(sim.url))
        try:
            deployed = (await http.get("/_sim/wallets", params={"owner": account.signer.lower()})).json()
            assert [(w["address"], w["kind"]) for w in deployed] == [(account.wallet.lower(), "deposit")]
        finally:
            await account.close()


async def test_the_rate_limit_headers_reach_the_signers_state(room: Room) -> None:
    """The venue reports the signer's bucket on order and cancel answers (Poly-RateLimit-*): the SDK's
    listener feeds them into the account's state."""
    token = room.token()
    await room.book(token, [[0.40, 100]], [[0.45, 100]])
    ack = await room.orders.place_limit(room.market(token), "BUY", 0.30, 5, 0.01)
    await room.orders.cancel(ack.order_id)
    state = room.account.rate.snapshot()
    assert state["reports"] >= 2
    assert state["tier"] == "standard"
    assert state["remaining"] is not None
    assert state["signer"] == room.account.signer


async def test_a_strict_trades_read_tells_a_restarting_venue_from_a_trade_not_listed(room: Room) -> None:
    """During the weekly restart the trades endpoint answers 425: the plain read says "not listed"
    (None: the follower asks again later); the strict read says "not read", so the worker's fill
    booking waits the window out instead of booking the shares without their trade."""
    await room.fault(kind="restart", seconds=30, post_only_seconds=0)
    assert await room.orders.trades_by_id(["trade-1"]) == {"trade-1": None}
    with pytest.raises(VenueUnavailable) as refused:
        await room.orders.trades_by_id(["trade-1"], strict=True)
    assert refused.value.restriction == "restarting"
