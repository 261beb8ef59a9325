"""Public reads of the unmodified official SDK against sim_exchange: Gamma's keyset paging, markets
of both systems, order books; the sunset offset lists; the sim's own contract addresses."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from eth_utils.crypto import keccak
from polymarket import AsyncPublicClient
from polymarket.errors import RequestRejectedError

from harness import SimExchangeProcess
from shared.venue.environment import fetch_sim_environment, production
from tests.integration.sim_sdk_support import eoa_client, exact_order, market, markets, sdk_environment, wallet_client

StartSim = Callable[..., SimExchangeProcess]


async def test_public_reads_page_by_keyset_over_both_market_systems(start_sim: StartSim) -> None:
    sim = start_sim({"sim_exchange": {"markets": 7, "negrisk_events": 1, "negrisk_outcomes": 3}})
    every = markets(sim)
    assert sorted({m["version"] for m in every}) == ["v1", "v2"]
    v2 = market(sim, "v2")
    client = AsyncPublicClient(environment=await sdk_environment(sim))
    try:
        pages = [p async for p in client.list_markets(page_size=3, version=["v1", "v2"])]
        assert [len(p.items) for p in pages] == [3, 3, 3, 1]  # 7 binary + 3 neg-risk outcome markets
        assert [p.next_cursor is not None for p in pages] == [True, True, True, False]
        assert {m.condition_id for p in pages for m in p.items} == {m["condition_id"] for m in every}
        # no version: the venue's default is CTF markets only
        v1_only = [m async for m in client.list_markets(page_size=100).iter_items()]
        assert {m.version for m in v1_only} == {"v1"}
        assert len(v1_only) == 7
        # an id filter finds a v2 market without a version, in either condition-id form
        for cid in (v2["condition_id"], v2["condition_id"][:-2]):
            found = [m async for m in client.list_markets(condition_ids=[cid], page_size=1).iter_items()]
            assert [(m.version, m.outcomes.yes.position_id) for m in found] == [("v2", v2["tokens"][0]["token_id"])]
        events = [p async for p in client.list_events(page_size=2)]
        assert [len(p.items) for p in events] == [2, 2, 1]  # 4 binary v1 events + 1 neg-risk event
        got = await client.get_market(id=v2["gamma_id"])
        assert (got.version, got.outcomes.no.position_id, got.outcomes.yes.token_id) == (
            "v2", v2["tokens"][1]["token_id"], None)
        assert (await client.get_market(slug=v2["slug"])).id == v2["gamma_id"]
        for m in (market(sim, "v1"), v2):
            book = await client.get_order_book(asset_id=m["tokens"][0]["token_id"])
            assert (book.asset_id, book.market, str(book.tick_size)) == (m["tokens"][0]["token_id"],
                                                                        m["condition_id"], "0.01")
            assert book.asks
            assert book.bids
    finally:
        await client.close()
    raw = httpx.get(f"{sim.url}/gamma/markets/keyset", params={"limit": 100, "version": ["v1", "v2"]}, timeout=30).json()
    assert "next_cursor" not in raw
    assert len(raw["markets"]) == 10
    assert json.loads(next(m for m in raw["markets"] if m["version"] == "v1")["clobTokenIds"])
    assert "clobTokenIds" not in next(m for m in raw["markets"] if m["version"] == "v2")
    for params, why in (({"limit": 101}, "between 1 and 100"), ({"offset": 10}, "after_cursor"),
                        ({"after_cursor": "nonsense"}, "invalid after_cursor")):
        refused = httpx.get(f"{sim.url}/gamma/markets/keyset", params=params, timeout=30)
        assert refused.status_code == 400, refused.text
        assert why in refused.json()["error"]
    assert httpx.get(f"{sim.url}/gamma/events/keyset", params={"limit": 500}, timeout=30).status_code == 200
    assert httpx.get(f"{sim.url}/gamma/events/keyset", params={"limit": 501}, timeout=30).status_code == 400
    # polyfleet's own callers read the keyset: the offset lists are gone by default, as on the venue
    assert httpx.get(f"{sim.url}/gamma/markets", params={"limit": 3}, timeout=30).status_code == 404


def test_the_sunset_offset_lists_answer_404_naming_the_keyset_endpoint(start_sim: StartSim) -> None:
    sim = start_sim({"sim_exchange": {"legacy_gamma_lists": False}})
    for path in ("markets", "events"):
        gone = httpx.get(f"{sim.url}/gamma/{path}", params={"limit": 5}, timeout=30)
        assert gone.status_code == 404
        assert f"/{path}/keyset" in gone.json()["error"]
    assert httpx.get(f"{sim.url}/gamma/markets/keyset", timeout=30).status_code == 200
    assert httpx.get(f"{sim.url}/gamma/markets/{market(sim, 'v1')['gamma_id']}", timeout=30).status_code == 200


async def test_own_addresses_by_default_everywhere_the_sim_checks_and_reports(start_sim: StartSim) -> None:
    sim = start_sim()
    env = await fetch_sim_environment(sim.url)
    prod = production()
    for name in ("standard_exchange", "neg_risk_exchange", "exchange_v3", "collateral_token", "position_manager",
                 "protocol_v2_router", "conditional_tokens"):
        assert env.address(name).lower() == "0x" + keccak(text=f"polyfleet-sim:{name}")[-20:].hex()
        assert env.address(name) != prod.address(name)
    assert env.wallet_derivation["deposit_wallet_factory"] != prod.wallet_derivation["deposit_wallet_factory"]
    # the SDK, built from that environment, creates a deposit wallet and trades both systems
    client = await wallet_client(sim)
    try:
        for version in ("v1", "v2"):
            placed = await client.place_limit_order(asset_id=market(sim, version)["tokens"][0]["token_id"],
                                                    price="0.10", size="10", side="BUY")
            assert placed.ok, placed
        assert httpx.get(f"{sim.url}/relayer/deployed", params={"address": str(client._ctx.wallet),
                                                                 "type": "WALLET"}, timeout=30).json() == {"deployed": True}
    finally:
        await client.close()
    # an order signed for production's exchange (an address typed by hand) is not an order of this sim
    legacy = await eoa_client(sim)
    try:
        yes = market(sim, "v1")["tokens"][0]["token_id"]
        signed = await exact_order(sim, legacy, yes, "BUY", 1_000_000, 10_000_000,
                                   exchange=prod.address("standard_exchange"))
        with pytest.raises(RequestRejectedError, match="invalid signature") as refused:
            await legacy.post_order(signed)
        assert refused.value.status == 400
        assert (await legacy.post_order(await exact_order(sim, legacy, yes, "BUY", 1_000_000, 10_000_000))).ok
    finally:
        await legacy.close()

