"""The arbitrage on a venue that settles late (issue 16 item 2; docs/arbitrage.md "Fills that
settle late"): a real sim_exchange whose trades stay MATCHED for ``settle_lag_ms`` before their
shares (or collateral) move, and of which a share end FAILED; a real gateway, Redis and the
scanner trading through the venue room. Which trades fail is the sim's seeded draw in match
order, so each test starts the sim with the seed that fails the trades it is about. The sim's
account is the judge.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually, sim_get
from services.arb_scanner.service import ArbScannerService
from services.sim_exchange.settlement import FAILED, Settlement
from shared.keys import Keys
from shared.venue.environment import fetch_sim_environment
from tests.integration import test_arb_scanner as base
from tests.integration.test_arb_chain import ME, _ready
from tests.integration.test_arb_scanner import Running, audits, put_book, start

running = base.running

SETTLE_LAG_MS = 1500
FAIL_SHARE = 0.3
START_CASH = 10_000.0


def seed_failing(outcomes: list[bool]) -> int:
    """The first sim seed whose first trades (in match order) settle as ``outcomes``: True = FAILED."""
    for seed in range(1, 1000):
        settlement: Settlement[int] = Settlement(1.0, FAIL_SHARE, seed)
        for i in range(len(outcomes)):
            settlement.enroll(i, 0.0)
        failed = {t.trade for t in settlement.advance(10.0) if t.status == FAILED}
        if [i in failed for i in range(len(outcomes))] == outcomes:
            return seed
    raise AssertionError(f"no seed settles as {outcomes}")


def late_sim(start_sim: Callable[..., SimExchangeProcess], outcomes: list[bool]) -> SimExchangeProcess:
    """test_arb_chain's sim (a v1 and a v2 binary market, a 3-outcome event), settling late."""
    return start_sim({"sim_exchange": {**base.SIM, "v2_share": 0.5, "settle_lag_ms": SETTLE_LAG_MS,
                                       "settle_fail_share": FAIL_SHARE, "seed": seed_failing(outcomes)}})


async def scanner_on(tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running,
                     wallet: str = "eoa", **arb: Any) -> ArbScannerService:
    scanner = await start(tmp_path, sim, r, running, {
        "execute": True, "kinds": ["buy_both"], "settle_poll_sec": 0.2, "chain": {"receipt_timeout_sec": 5.0},
        **arb}, polymarket={"wallet": wallet})
    await eventually(lambda: _ready(r, keys, scanner), timeout=30, what="catalogue streamed and execution on")
    return scanner


Asks = tuple[tuple[float, float], ...]


async def _arm(sim: SimExchangeProcess, version: str, yes_asks: Asks = ((0.45, 40), (0.47, 100)),
               no_asks: Asks = ((0.50, 60),)) -> tuple[str, str, str]:
    """Asks on a binary market of ``version`` (bids YES 0.44, NO 0.48; by default test_arb_chain's
    ask sum 0.95: 48 sets, profit 2.24), written high first, so no half-written pair (one new book
    beside a seeded one) is an opportunity of another size."""
    m = next(m for m in await sim_get(sim, "/_sim/markets") if m.get("version", "v1") == version and not m["neg_risk"])
    yes, no = m["tokens"][0]["token_id"], m["tokens"][1]["token_id"]
    await put_book(sim, yes, [[0.44, 200]], [[0.60, 200]])
    await put_book(sim, no, [[0.48, 200]], [[0.60, 200]])
    await put_book(sim, yes, [[0.44, 200]], [list(a) for a in yes_asks])
    await put_book(sim, no, [[0.48, 200]], [list(a) for a in no_asks])
    return m["condition_id"], yes, no


def _address(scanner: ArbScannerService) -> str:
    assert scanner.executor is not None
    return scanner.executor.orders.address


async def _account(sim: SimExchangeProcess, address: str) -> dict[str, Any]:
    got: dict[str, Any] = (await sim_get(sim, "/_sim/positions", address=address))[address]
    return got


async def _fill_times(sim: SimExchangeProcess, address: str) -> list[float]:
    return [f["ts"] for o in await sim_get(sim, "/_sim/orders") if o["maker_address"].lower() == address
            for f in o["fills"]]


@pytest.mark.parametrize(("version", "wallet"), [("v1", "eoa"), ("v2", "deposit")])
async def test_a_merge_waits_for_its_legs_to_settle_then_the_set_is_booked(
        tmp_path: Path, start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis, keys: Keys,
        running: Running, version: str, wallet: str) -> None:
    sim = late_sim(start_sim, [False, False, False])  # the YES leg takes two levels: three trades, none fails
    scanner = await scanner_on(tmp_path, sim, r, keys, running, wallet)
    address = _address(scanner)
    cid, yes, no = await _arm(sim, version)  # ask sum 0.95: 48 sets, profit 2.24
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=30)
    d = done[0].detail
    assert d["status"] == "done", d
    assert d["merged"] == pytest.approx(48)
    assert d["merge_tries"] == 1  # merged once the legs had settled, not refused first
    assert [len(leg["trade_ids"]) for leg in d["legs"]] == [2, 1]
    assert d["pnl"] == pytest.approx(2.24)
    [merge] = await sim_get(sim, "/_sim/ctf/ops", address=address)
    assert (merge["kind"], merge["market"], merge["amount"]) == ("merge", cid, 48)
    # the legs' trades were CONFIRMED settle_lag_ms after their match: the merge came after that
    assert merge["ts"] >= max(await _fill_times(sim, address)) + SETTLE_LAG_MS / 1000
    acct = await _account(sim, address)
    assert (acct["positions"][yes], acct["positions"][no]) == (pytest.approx(0), pytest.approx(0))
    assert acct["cash"] == pytest.approx(START_CASH + 2.24)
    # booked: the day's PnL, nothing held, the set's claim on the fleet budget gone
    assert float(await r.hget(keys.arb_pnl_daily(), (await r.hkeys(keys.arb_pnl_daily()))[0])) == pytest.approx(2.24)
    assert await r.hget(keys.arb_exposure(), cid) is None
    assert not await r.hexists(keys.arb_held(), cid)
    assert await r.hget(keys.reserved(), f"arb:{cid}") is None
    # each system's own contract: the collateral adapter (v1), the Router (v2)
    env = await fetch_sim_environment(sim.url)
    if wallet == "eoa":
        txs = await sim_get(sim, "/_sim/rpc/txs", address=address)
        assert (txs[-1]["to"].lower(), txs[-1]["status"]) == (env.address("collateral_adapter").lower(), 1)
    else:
        txs = await sim_get(sim, "/relayer/transactions", owner=ME)
        assert [c["call"] for c in txs[-1]["calls"]] == ["v2_merge"]


async def test_a_merge_short_of_shares_is_retried_until_the_legs_settle(
        tmp_path: Path, start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis, keys: Keys,
        running: Running) -> None:
    sim = late_sim(start_sim, [False, False, False])
    # no wait for the legs: the merge goes at once, short of the shares still MATCHED
    scanner = await scanner_on(tmp_path, sim, r, keys, running, settle_wait_sec=0)
    address = _address(scanner)
    cid, _yes, _no = await _arm(sim, "v1")
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=30)
    d = done[0].detail
    assert d["status"] == "done", d
    assert d["merged"] == pytest.approx(48)
    assert d["merge_tries"] >= 2  # refused while the legs were MATCHED, retried with backoff
    assert d["held_sets"] == 0
    assert [(o["kind"], o["amount"]) for o in await sim_get(sim, "/_sim/ctf/ops", address=address)] == [("merge", 48)]
    assert (await _account(sim, address))["cash"] == pytest.approx(START_CASH + 2.24)
    assert not await r.hexists(keys.arb_held(), cid)


async def test_a_leg_whose_trade_fails_at_settlement_is_voided_and_the_other_leg_unwound(
        tmp_path: Path, start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis, keys: Keys,
        running: Running) -> None:
    sim = late_sim(start_sim, [True, False, False])  # the first leg matched fails; the rest settle
    scanner = await scanner_on(tmp_path, sim, r, keys, running)
    address = _address(scanner)
    # one level a leg (one trade each): asks 0.45 + 0.50 = 0.95, 60 deep, x 0.8 = 48 sets
    cid, yes, no = await _arm(sim, "v1", ((0.45, 60),), ((0.50, 60),))
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=30)
    d = done[0].detail
    assert d["status"] == "partial", d
    assert (d["merged"], d["merge_tries"], d["held_sets"]) == (0, 0, 0)
    [lost] = [leg for leg in d["legs"] if leg["voided"]]
    [kept] = [leg for leg in d["legs"] if not leg["voided"]]
    assert (lost["voided"], lost["filled"], len(lost["failed_trades"])) == (pytest.approx(48), 0, 1)
    assert any("FAILED at settlement" in e for e in d["errors"])
    # the leg that settled is a lone leg: sold back into its bid at once
    bid = {yes: 0.44, no: 0.48}[kept["token_id"]]
    assert [(u["token_id"], u["filled"], u["avg_price"]) for u in d["unwinds"]] == [
        (kept["token_id"], pytest.approx(48), pytest.approx(bid))]
    assert d["pnl"] == pytest.approx(48 * (bid - kept["avg_price"]))
    assert d["held_cost"] == 0
    assert await sim_get(sim, "/_sim/ctf/ops", address=address) == []  # nothing to merge

    async def settled() -> dict[str, Any] | None:  # the unwind's own trade settles late too
        acct = await _account(sim, address)
        return acct if acct["positions"].get(kept["token_id"], 0) == pytest.approx(0) else None

    acct = await eventually(settled, timeout=10)
    assert acct["positions"].get(lost["token_id"], 0) == pytest.approx(0)  # the FAILED buy never delivered
    # the failed buy's collateral never left: only the round trip of the kept leg moved cash
    assert acct["cash"] == pytest.approx(START_CASH + 48 * (bid - kept["avg_price"]))
    assert await r.hget(keys.arb_exposure(), cid) is None
    assert await r.hget(keys.reserved(), f"arb:{cid}") is None
