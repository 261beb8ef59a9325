"""``POST /_sim/reset`` gives the sim a fresh start can give: the tests share sim processes
(harness.SimPool) and reset one for each test, so a reset sim must be, for everything a test can
read, the sim a new process started from the same config would be.

The used sim is dirtied through every door a test has (the SDK: deposit wallet, relayer, approvals,
splits, orders and fills; the admin API: books, price paths, tick sizes, gamma overrides, trades,
resolutions, accounts, fees, drift, every fault kind; the chain's JSON-RPC; open sockets), then reset
to a config unlike the one it started with. Each facet read below must differ from a fresh sim's
before the reset (the dirt shows, so the comparison can fail) and equal it after."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from polymarket import AsyncSecureClient
from websockets.asyncio.client import connect

from harness import SimExchangeProcess, free_port, write_config
from tests.integration.sim_sdk_support import LEGACY_ADDRESS, eoa_client, market, post_limit, wallet_client

UNIT = 1_000_000
# unlike write_config's defaults (the used sim's start): more markets, a neg-risk event, both systems,
# another chain, late settlement, short heartbeats, another seed; no walk, so two sims' books stay comparable
CONFIG = {"sim_exchange": {"markets": 4, "negrisk_events": 1, "negrisk_outcomes": 3, "v2_share": 0.5, "seed": 11,
                           "chain_id": 80002,
                           "tick_interval_ms": 600_000, "settle_lag_ms": 2000, "heartbeat_timeout_ms": 1500}}
KEY = "0x" + "7e" * 32  # the deposit wallet's owner, the same on both sims


def start(tmp_path: Path, name: str, overrides: dict[str, object] | None) -> SimExchangeProcess:
    d = tmp_path / name
    d.mkdir()
    port = free_port()
    return SimExchangeProcess(write_config(d / "polyfleet.yaml", port, overrides), port, d).start()


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[list[SimExchangeProcess]]:
    procs: list[SimExchangeProcess] = []
    yield procs
    for p in procs:
        p.stop()


def _get(sim: SimExchangeProcess, path: str, **params: Any) -> Any:
    resp = httpx.get(f"{sim.url}{path}", params=params, timeout=30)
    return resp.status_code, resp.json() if resp.headers.get("content-type", "").startswith("application/json") else resp.text


def _post(sim: SimExchangeProcess, path: str, body: Any) -> Any:
    resp = httpx.post(f"{sim.url}{path}", json=body, timeout=30)
    assert resp.status_code == 200, (path, body, resp.text)
    return resp.json()


def _rpc(sim: SimExchangeProcess, method: str, *params: Any) -> Any:
    return _post(sim, "/_sim/rpc", {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})


async def _market_socket(sim: SimExchangeProcess, token: str) -> Any:
    """The first frame a new market-socket subscriber gets (None: nothing within 2 s)."""
    async with connect(f"ws://127.0.0.1:{sim.port}/ws/market") as ws:
        await ws.send(json.dumps({"assets_ids": [token], "type": "market"}))
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
        except TimeoutError:
            return None
    return [{k: v for k, v in b.items() if k not in ("timestamp", "hash")} for b in frame]


async def observe(sim: SimExchangeProcess, wallet: str) -> dict[str, Any]:
    """What a test can read of a sim, facet by facet; the sim's own port and clock left out."""
    markets = _get(sim, "/_sim/markets")[1]
    token = markets[0]["tokens"][0]["token_id"]
    out: dict[str, Any] = {
        "markets": markets,
        "clob_markets": _get(sim, "/markets"),
        "gamma_markets": _get(sim, "/gamma/markets/keyset", limit=100),
        "gamma_events": _get(sim, "/gamma/events/keyset", limit=100),
        "neg_risk_events": _get(sim, "/_sim/events"),
        "orders": _get(sim, "/_sim/orders"),
        "accounts": _get(sim, "/_sim/positions"),
        "wallets": _get(sim, "/_sim/wallets"),
        "data_trades": _get(sim, "/data-api/trades", limit=500),
        "ctf_ops": _get(sim, "/_sim/ctf/ops"),
        "chain_txs": _get(sim, "/_sim/rpc/txs"),
        "chain": (_rpc(sim, "eth_blockNumber")["result"],
                  _rpc(sim, "eth_getTransactionCount", LEGACY_ADDRESS, "latest")["result"]),
        "payouts": _get(sim, "/_sim/resolve/payouts"),
        "relayer": (_get(sim, "/relayer/transactions"), _get(sim, "/relayer/deployed", address=wallet)),
        "fee_rate": _get(sim, "/fee-rate", token_id=token),
        "http_faults": (_get(sim, "/midpoint", token_id=token)[0], _get(sim, "/book", token_id=token)[0]),
        "market_socket": await _market_socket(sim, token),
        "environment": _get(sim, "/_sim/environment"),
    }
    text = re.sub(rf"127\.0\.0\.1:{sim.port}\b", "SIM", json.dumps(out))
    # markets end some days after the venue was built: those days, not the instant, are the venue's
    return json.loads(re.sub(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"', _days_ahead, text))


def _days_ahead(match: re.Match[str]) -> str:
    when = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return f'"now + {round((when - datetime.now(UTC)).total_seconds() / 86400)} days"'


async def dirty(sim: SimExchangeProcess) -> str:
    """Change everything a test can; returns the deposit wallet's address."""
    client: AsyncSecureClient = await wallet_client(sim, key=KEY)  # the relayer creates the deposit wallet
    eoa = await eoa_client(sim)
    try:
        wallet = str(client._ctx.wallet)
        await client.setup_trading_approvals()  # a relayer batch
        m = market(sim, "v1")
        yes = m["tokens"][0]["token_id"]
        await (await client.split_position(condition_id=m["condition_id"], amount=10 * UNIT)).wait()
        await post_limit(client, yes, "0.05", "10", "BUY")  # resting
        await post_limit(eoa, yes, "0.99", "10", "BUY")  # filled against the crowd: a trade, settling late
        await eoa.send_order_heartbeat()
        await (await eoa.split_position(condition_id=m["condition_id"], amount=2 * UNIT)).wait()  # raw transactions
        _post(sim, "/_sim/resolve", {"condition_id": m["condition_id"], "winner": "Yes"})
        await (await client.redeem_positions(condition_id=m["condition_id"])).wait()  # a payout
    finally:
        await client.close()
        await eoa.close()
    markets = _get(sim, "/_sim/markets")[1]
    token, other = markets[0]["tokens"][0]["token_id"], markets[1]["tokens"][0]["token_id"]
    _post(sim, "/_sim/trades", {"proxyWallet": "0x" + "11" * 20, "side": "BUY", "asset": token, "size": 5, "price": 0.5})
    _post(sim, "/_sim/burst", {"wallets": ["0x" + "22" * 20], "count": 3})
    httpx.patch(f"{sim.url}/_sim/gamma/{markets[1]['gamma_id']}", json={"volumeNum": 2_000_000},
                timeout=30).raise_for_status()
    httpx.put(f"{sim.url}/_sim/book/{other}", json={"bids": [[0.2, 50]], "asks": [[0.3, 50]]},
              timeout=30).raise_for_status()
    httpx.put(f"{sim.url}/_sim/price/{token}", json={"path": [0.4, 0.6] * 50, "interval_ms": 100},
              timeout=30).raise_for_status()
    httpx.put(f"{sim.url}/_sim/accounts/{wallet}", json={"cash": 3, "allowances": {"COLLATERAL": 1}},
              timeout=30).raise_for_status()
    httpx.put(f"{sim.url}/_sim/fees/{markets[0]['condition_id']}", json={"rate": 0.05},
              timeout=30).raise_for_status()
    httpx.put(f"{sim.url}/_sim/drift", json={"step": 0.02, "max": 0.2}, timeout=30).raise_for_status()
    _post(sim, "/_sim/rpc/fault", {"kind": "revert", "count": 3})
    for fault in ({"kind": "tick_size_change", "token_id": other, "new_tick_size": 0.001},
                  {"kind": "http_429", "count": 1000, "retry_after": 1, "path_prefix": "/midpoint"},
                  {"kind": "ws_stall", "seconds": 60},
                  {"kind": "order_timeout_after_place", "count": 5, "delay_sec": 3},
                  {"kind": "delayed", "condition_id": markets[0]["condition_id"], "delay_ms": 1500},
                  {"kind": "rate_limit", "order_burst": 1, "order_rate": 0.1},
                  {"kind": "heartbeat_outage", "seconds": 60},
                  {"kind": "rtds_lapse", "mode": "mute", "seconds": 60},
                  {"kind": "restart", "seconds": 60, "post_only_seconds": 60}):
        _post(sim, "/_sim/fault", fault)
    return wallet


async def test_a_reset_sim_equals_a_fresh_start_of_the_same_config(tmp_path: Path,
                                                                   sims: list[SimExchangeProcess]) -> None:
    used = start(tmp_path, "used", None)
    sims.append(used)
    wallet = await dirty(used)
    fresh = start(tmp_path, "fresh", CONFIG)
    sims.append(fresh)
    async with contextlib.AsyncExitStack() as stack:  # sockets open across the reset: it closes them
        sockets = [await stack.enter_async_context(connect(f"ws://127.0.0.1:{used.port}{path}"))
                   for path in ("/ws/market", "/ws/live-data")]
        before = await observe(used, wallet)
        want = await observe(fresh, wallet)
        assert [k for k in want if before[k] == want[k]] == []  # every facet shows the dirt
        d = tmp_path / "reset"
        d.mkdir()
        used.reset(write_config(d / "polyfleet.yaml", used.port, CONFIG))
        for ws in sockets:
            await asyncio.wait_for(ws.wait_closed(), 5)
    got = await observe(used, wallet)
    assert {k: got[k] for k in want if got[k] != want[k]} == {}
    assert used.env["PF_CONFIG"] == str(d / "polyfleet.yaml")
    assert "venue reset" in used.log()


def test_a_reset_refuses_another_port_and_a_bad_section(tmp_path: Path, sims: list[SimExchangeProcess]) -> None:
    quiet = {"sim_exchange": {"tick_interval_ms": 600_000}}  # no walk: two sims' books stay comparable
    sim = start(tmp_path, "sim", quiet)
    sims.append(sim)
    for body, text in (({"sim_exchange": {"port": sim.port + 1}}, "host and port are the process's"),
                       ({"sim_exchange": {"markets": "many"}}, "markets"),
                       ({"sim_exchange": {"nope": 1}}, "nope"),
                       ([1], "the body is")):
        resp = httpx.post(f"{sim.url}/_sim/reset", json=body, timeout=30)
        assert resp.status_code == 400, (body, resp.text)
        assert text in resp.json()["error"], (body, resp.text)
    # no body: a fresh venue of the current config, the one the process started with ...
    again = start(tmp_path, "again", quiet)
    sims.append(again)
    _dirty_book(sim)
    dirty_books = _get(sim, "/_sim/markets")
    assert httpx.post(f"{sim.url}/_sim/reset", timeout=30).json()["reset"] is True
    assert _get(sim, "/_sim/markets") == _get(again, "/_sim/markets") != dirty_books
    # ... or the last reset's (a test resetting its sim mid-way keeps its own config)
    two = {"sim_exchange": {"tick_interval_ms": 600_000, "markets": 2, "seed": 3}}
    assert httpx.post(f"{sim.url}/_sim/reset", json=two, timeout=30).json()["markets"] == 2
    _dirty_book(sim)
    assert httpx.post(f"{sim.url}/_sim/reset", timeout=30).json() == {"reset": True, "markets": 2, "seed": 3}
    other = start(tmp_path, "other", two)
    sims.append(other)
    assert _get(sim, "/_sim/markets") == _get(other, "/_sim/markets")


def _dirty_book(sim: SimExchangeProcess) -> None:
    token = _get(sim, "/_sim/markets")[1][0]["tokens"][0]["token_id"]
    httpx.put(f"{sim.url}/_sim/book/{token}", json={"bids": [[0.2, 50]], "asks": [[0.3, 50]]},
              timeout=30).raise_for_status()
