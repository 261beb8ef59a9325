"""arb_scanner against real sim_exchange, a real gateway and real Redis (E1-E4).

Books are set with the sim's admin API; the gateway streams them; the scanner detects, sizes
from the venue's /books, publishes on pf:opportunities and (with execution on) trades and merges
through the venue room (the official SDK; the sim's relayer and JSON-RPC node).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually, write_config
from harness.streams import read_messages
from services.arb_scanner.service import ArbScannerService
from services.ws_gateway.service import WsGatewayService
from shared.config import load_settings
from shared.keys import REQUESTER_ARB_SCANNER, Keys
from shared.messages import AuditEvent, Opportunity, decode

# two v1 binary markets: the arbitrage catalogue reads CTF markets only until it knows v2 ones
SIM = {"markets": 2, "v2_share": 0.0, "negrisk_events": 1, "negrisk_outcomes": 3, "volatility": 0.0}
ARB = {"enabled": True, "min_edge": 0.01, "haircut": 0.2, "near_miss_band": 0.005, "depth_min_interval_sec": 0,
       "rescan_interval_sec": 0.5, "catalogue_refresh_sec": 60, "max_trades_per_minute": 1}


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim({"sim_exchange": SIM})


Running = list[tuple[Any, asyncio.Task[None]]]


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    out: Running = []
    yield out
    for svc, task in reversed(out):
        svc.stop()
        await asyncio.wait_for(task, 15)


async def start(tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, running: Running,
                arb: dict[str, Any], polymarket: dict[str, Any] | None = None) -> ArbScannerService:
    cfg = write_config(tmp_path / "polyfleet.yaml", sim.port, {
        "polymarket": {"wallet": "eoa", **(polymarket or {})},  # the sim's legacy EOA unless a test says
        "sim_exchange": SIM, "arbitrage": {**ARB, **arb},
        "gateway": {"reconcile_interval_sec": 1.0, "ping_interval_sec": 1.0}})
    settings = load_settings(cfg, environ={})
    gw = WsGatewayService(settings, "g1", redis=r)
    running.append((gw, asyncio.create_task(gw.run())))
    scanner = ArbScannerService(settings, "a1", redis=r)
    running.append((scanner, asyncio.create_task(scanner.run())))
    return scanner


async def put_book(sim: SimExchangeProcess, token: str, bids: list[list[float]], asks: list[list[float]]) -> None:
    async with httpx.AsyncClient() as c:
        resp = await c.put(f"{sim.url}/_sim/book/{token}", json={"bids": bids, "asks": asks})
        assert resp.status_code == 200, resp.text


async def opportunities(r: aioredis.Redis, keys: Keys) -> list[Opportunity]:
    return await read_messages(r, keys.opportunities(), Opportunity)


async def audits(r: aioredis.Redis, keys: Keys, kind: str) -> list[AuditEvent]:
    out = []
    for _, fields in await r.xrange(keys.events()):
        msg = decode(fields)
        if isinstance(msg, AuditEvent) and msg.kind == kind:
            out.append(msg)
    return out


def first_market(sim: SimExchangeProcess) -> dict[str, Any]:
    return httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()[0]  # type: ignore[no-any-return]


async def arm_ask_sum_095(sim: SimExchangeProcess) -> tuple[str, str, str]:
    m = first_market(sim)
    yes, no = m["tokens"][0]["token_id"], m["tokens"][1]["token_id"]
    # YES asks 0.45 x 40, 0.47 x 100; NO asks 0.50 x 60: the top sums to 0.95.
    # Walk: 40 sets at .95 (edge .05), 20 at .97 (.03), then NO is empty: depth 60, x 0.8 = 48 sets,
    # profit 40 x .05 + 8 x .03 = 2.24.
    await put_book(sim, yes, [[0.44, 200]], [[0.45, 40], [0.47, 100]])
    await put_book(sim, no, [[0.48, 200]], [[0.50, 60]])
    return m["condition_id"], yes, no


async def test_ask_sum_095_is_an_opportunity_with_the_right_edge_and_size(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running) -> None:
    scanner = await start(tmp_path, sim, r, running, {})
    await eventually(lambda: _ready(r, keys, scanner), timeout=20)
    cid, yes, no = await arm_ask_sum_095(sim)

    async def sized() -> Opportunity | None:
        # (setting the two books one after the other can show a split_sell for a moment)
        got = [o for o in await opportunities(r, keys)
               if o.market == cid and o.kind == "buy_both" and o.depth_source == "book"]
        return got[-1] if got else None

    opp = await eventually(sized, timeout=15)
    assert opp.kind == "buy_both"
    assert opp.verdict == "opportunity"
    assert opp.tokens == [yes, no]
    assert opp.prices == [0.45, 0.5]
    assert opp.top_sum == pytest.approx(0.95)
    assert opp.edge == pytest.approx(0.05)
    assert opp.depth == pytest.approx(60)
    assert opp.size == pytest.approx(48)
    assert opp.profit == pytest.approx(2.24)
    assert opp.limits == [0.47, 0.5]
    assert opp.score > 0
    first = [o for o in await opportunities(r, keys) if o.market == cid and o.kind == "buy_both"]
    assert first[0].status == "open"  # the top of book opens it at once, the walk updates it
    assert len({o.opp_id for o in first}) == 1
    # de-duplicated while it persists: no new message without a change
    n, rescans = len(first), scanner.stats["rescans"]
    await eventually(lambda: _true(scanner.stats["rescans"] >= rescans + 3), timeout=10, what="three rescans")
    assert len([o for o in await opportunities(r, keys) if o.market == cid and o.kind == "buy_both"]) == n
    # the book goes back above 1: the episode closes
    await put_book(sim, no, [[0.48, 200]], [[0.60, 60]])

    async def closed() -> bool:
        return any(o.status == "close" and o.market == cid and o.kind == "buy_both"
                   for o in await opportunities(r, keys))

    await eventually(closed, timeout=10)

    # neg-risk: the YES asks of the three outcomes sum to 0.95
    async with httpx.AsyncClient() as c:
        event = (await c.get(f"{sim.url}/_sim/events")).json()[0]
    for outcome, ask in zip(event["outcomes"], (0.30, 0.33, 0.32), strict=True):
        await put_book(sim, outcome["yes"], [[ask - 0.05, 50]], [[ask, 50]])

    async def negrisk() -> Opportunity | None:
        got = [o for o in await opportunities(r, keys)
               if o.kind == "negrisk_buy_all" and o.verdict == "opportunity" and o.depth_source == "book"]
        return got[-1] if got else None

    nr = await eventually(negrisk, timeout=15)
    assert nr.market == event["neg_risk_market_id"]
    assert nr.top_sum == pytest.approx(0.95)
    assert nr.size == pytest.approx(40)  # 50 x 0.8
    assert nr.profit == pytest.approx(2.0)


async def _ready(r: aioredis.Redis, keys: Keys, scanner: ArbScannerService) -> bool:
    want = await r.scard(keys.gw_want(REQUESTER_ARB_SCANNER))
    # 2 binary + 3 outcome markets (2 tokens each) = 10 tokens, every one streamed
    sets = 6 if len(scanner.kinds) == 4 else 5
    return want == 10 and len(scanner.tops) == 10 and await r.hlen(keys.arb_catalogue()) == sets


async def test_execution_fills_both_legs_and_merges(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running) -> None:
    scanner = await start(tmp_path, sim, r, running, {"execute": True, "kinds": ["buy_both"]})
    await eventually(lambda: _ready(r, keys, scanner), timeout=20)
    cid, yes, no = await arm_ask_sum_095(sim)
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=20)
    d = done[0].detail
    assert d["status"] == "done"
    assert d["merged"] == pytest.approx(48)
    assert [leg["filled"] for leg in d["legs"]] == [pytest.approx(48), pytest.approx(48)]
    assert d["pnl"] == pytest.approx(2.24)
    async with httpx.AsyncClient() as c:
        ops = (await c.get(f"{sim.url}/_sim/ctf/ops")).json()
        assert [(o["kind"], o["market"], o["amount"]) for o in ops] == [("merge", cid, 48)]
        account = (await c.get(f"{sim.url}/_sim/positions", params={"address": ops[0]["address"]})).json()
    acct = account[ops[0]["address"]]
    assert acct["positions"][yes] == pytest.approx(0)
    assert acct["positions"][no] == pytest.approx(0)
    assert acct["cash"] == pytest.approx(10_000 + 2.24)
    assert float(await r.hget(keys.arb_pnl_daily(), next(iter(await r.hkeys(keys.arb_pnl_daily()))))) == \
        pytest.approx(2.24)
    # 12 sets are still there (9.6 after the haircut), but max_trades_per_minute is 1
    await eventually(lambda: _refused(scanner), timeout=10)
    assert len(await audits(r, keys, "arb.executed")) == 1


async def _refused(scanner: ArbScannerService) -> bool:
    return scanner.stats["execution_refusals"] >= 1


async def test_a_lone_filled_leg_is_unwound(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running) -> None:
    scanner = await start(tmp_path, sim, r, running, {"execute": True, "kinds": ["buy_both"]})
    await eventually(lambda: _ready(r, keys, scanner), timeout=20)
    async with httpx.AsyncClient() as c:  # the next order is refused (429): only one leg fills
        await c.post(f"{sim.url}/_sim/fault", json={"kind": "http_429", "count": 1, "retry_after": 1,
                                                    "path_prefix": "/order"})
    _cid, yes, no = await arm_ask_sum_095(sim)
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=20)
    d = done[0].detail
    assert d["status"] == "partial"
    assert d["merged"] == 0
    filled = [leg for leg in d["legs"] if leg["filled"] > 0]
    assert len(filled) == 1
    assert filled[0]["filled"] == pytest.approx(48)
    assert [(u["token_id"], u["filled"]) for u in d["unwinds"]] == [(filled[0]["token_id"], pytest.approx(48))]
    # sold back into the bids set above (YES 0.44, NO 0.48): a small, bounded loss
    bid = 0.44 if filled[0]["token_id"] == yes else 0.48
    assert d["unwinds"][0]["avg_price"] == pytest.approx(bid)
    assert d["pnl"] == pytest.approx(48 * (bid - filled[0]["avg_price"]))
    async with httpx.AsyncClient() as c:
        assert (await c.get(f"{sim.url}/_sim/ctf/ops")).json() == []
        address = scanner.executor.orders.address if scanner.executor else ""
        acct = (await c.get(f"{sim.url}/_sim/positions", params={"address": address})).json()[address]
    assert acct["positions"].get(yes, 0) == pytest.approx(0)
    assert acct["positions"].get(no, 0) == pytest.approx(0)


async def _true(value: bool) -> bool:
    return value
