"""The arbitrage's position calls through the official SDK, end to end: a real sim_exchange (its
relayer and JSON-RPC node are the venue), a real gateway, Redis and the scanner. An EOA's merge
is its own transaction over JSON-RPC, a deposit wallet's goes gasless through the relayer; a v1
set merges on the collateral adapter, a v2 set through the Router. The approvals go out once at
start; a merge without an outcome halts, a reverted one is held; a bad setup leaves execution off
with one error naming the fix, and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from eth_account import Account

from harness import SimExchangeProcess, eventually, sim_get, sim_post, write_config
from services.arb_scanner.ctf import check_execution_mode
from services.arb_scanner.service import ArbScannerService
from services.sim_exchange.auth import derive_key
from shared.config import SIM_PRIVATE_KEY, ConfigError, load_settings
from shared.keys import Keys
from shared.venue import approvals
from shared.venue.environment import fetch_sim_environment
from tests.integration import test_arb_scanner as base
from tests.integration.test_arb_scanner import Running, audits, put_book, start

running = base.running
ME = Account.from_key(SIM_PRIVATE_KEY).address.lower()


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    """test_arb_scanner's sim with one binary market of each system (and one 3-outcome neg-risk event)."""
    return start_sim({"sim_exchange": {**base.SIM, "v2_share": 0.5}})


async def _arm(sim: SimExchangeProcess, version: str) -> tuple[str, str, str]:
    """The ask sum 0.95 of test_arb_scanner (48 sets, profit 2.24) on a binary market of ``version``."""
    m = next(m for m in await sim_get(sim, "/_sim/markets") if m.get("version", "v1") == version and not m["neg_risk"])
    yes, no = m["tokens"][0]["token_id"], m["tokens"][1]["token_id"]
    await put_book(sim, yes, [[0.44, 200]], [[0.45, 40], [0.47, 100]])
    await put_book(sim, no, [[0.48, 200]], [[0.50, 60]])
    return m["condition_id"], yes, no


async def _ready(r: aioredis.Redis, keys: Keys, scanner: ArbScannerService) -> bool:
    tokens = {t for s in scanner.sets.values() for t in s.tokens}
    return (await r.hlen(keys.arb_catalogue()) == 5 and bool(tokens) and tokens <= set(scanner.tops)
            and scanner.executor is not None)


async def _scanner(tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running,
                   wallet: str = "eoa", **chain: Any) -> ArbScannerService:
    scanner = await start(tmp_path, sim, r, running, {
        "execute": True, "kinds": ["buy_both"], "chain": {"receipt_timeout_sec": 2.0, **chain}},
        polymarket={"wallet": wallet})
    await eventually(lambda: _ready(r, keys, scanner), timeout=30, what="catalogue streamed and execution on")
    return scanner


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("wallet", ["eoa", "deposit"])
async def test_scanner_approves_once_then_merges_through_the_sdk(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running,
        wallet: str, version: str) -> None:
    scanner = await _scanner(tmp_path, sim, r, keys, running, wallet)
    address = scanner.execution.executor.orders.address if scanner.execution.executor else ""
    env = await fetch_sim_environment(sim.url)
    # at start: every approval the contracts in use need, read over JSON-RPC, sent once through the SDK
    [sent] = await audits(r, keys, "arb.approvals")
    assert len(sent.detail["sent"]) == len(approvals.required(env))
    assert all(st.ok for st in await approvals.read(env.url("rpc_url"), address, approvals.required(env)))
    cid, yes, no = await _arm(sim, version)
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=20)
    d = done[0].detail
    assert d["status"] == "done", d
    assert d["merged"] == pytest.approx(48)
    assert d["pnl"] == pytest.approx(2.24)
    ops = await sim_get(sim, "/_sim/ctf/ops", address=address)
    assert [(o["kind"], o["amount"]) for o in ops] == [("merge", 48)]
    acct = (await sim_get(sim, "/_sim/positions", address=address))[address]
    assert acct["positions"][yes] == pytest.approx(0)
    assert acct["positions"][no] == pytest.approx(0)
    assert acct["cash"] == pytest.approx(10_000 + 2.24)
    target = env.address("protocol_v2_router" if version == "v2" else "collateral_adapter").lower()
    if wallet == "eoa":  # the EOA's own transactions: the approvals, then the merge
        txs = await sim_get(sim, "/_sim/rpc/txs", address=address)
        assert len(txs) == len(approvals.required(env)) + 1
        assert (txs[-1]["to"].lower(), txs[-1]["status"]) == (target, 1)
    else:  # gasless: the wallet's creation, one batch of approvals, the merge
        txs = await sim_get(sim, "/relayer/transactions", owner=ME)
        assert [t["type"] for t in txs] == ["WALLET-CREATE", "WALLET", "WALLET"]
        assert len(await audits(r, keys, "arb.wallet_created")) == 1
        assert [c["call"] for c in txs[-1]["calls"]] == ["v2_merge" if version == "v2" else "ctf_merge"]


async def test_scanner_halts_when_a_merge_has_no_outcome(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running) -> None:
    scanner = await _scanner(tmp_path, sim, r, keys, running)
    await sim_post(sim, "/_sim/rpc/fault", {"kind": "drop", "count": 1})  # the merge is accepted, never mined
    await _arm(sim, "v1")
    halted = await eventually(lambda: audits(r, keys, "arb.halted"), timeout=20)
    assert "outcome unknown" in halted[0].reason
    report = halted[0].detail["execution"]
    assert report["status"] == "unknown"
    assert [leg["filled"] for leg in report["legs"]] == [pytest.approx(48)] * 2  # both legs bought, not merged
    assert scanner.executor is None  # no more trading until a person looks
    assert await audits(r, keys, "arb.executed") == []
    assert await sim_get(sim, "/_sim/ctf/ops", address=ME) == []
    claim = await r.hget(keys.reserved(), "arb:" + report["set"])
    assert claim is not None  # the set's budget claim stays while the outcome is unknown
    assert float(claim) > 40


async def test_scanner_goes_on_when_a_merge_reverts(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running) -> None:
    # the sibling of the halt: a reverted merge changed nothing, so the sets are held and execution stays on
    scanner = await _scanner(tmp_path, sim, r, keys, running)
    await sim_post(sim, "/_sim/rpc/fault", {"kind": "revert", "count": 1})
    cid, _yes, _no = await _arm(sim, "v1")
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=20)
    d = done[0].detail
    assert d["status"] == "partial"
    assert d["merged"] == 0
    assert d["held_sets"] == pytest.approx(48)
    assert any("merge 48" in e for e in d["errors"])
    assert await audits(r, keys, "arb.halted") == []
    assert scanner.executor is not None  # still trading
    assert await r.hexists(keys.arb_held(), cid)  # held to resolution, redeemed when it resolves
    assert [t["status"] for t in await sim_get(sim, "/_sim/rpc/txs", address=ME)][-1] == 0


async def _setup_error(r: aioredis.Redis, keys: Keys) -> Any:
    [err] = await eventually(lambda: audits(r, keys, "arb.setup_error"), timeout=30)
    return err


@pytest.mark.parametrize(("case", "fix"), [
    ("approvals", "polyfleet setup-wallet"),
    ("api_key", "unset PF_CLOB_API_KEY"),
    ("proxy", "log in to polymarket.com"),
])
async def test_a_bad_setup_leaves_execution_off_with_one_error_naming_the_fix(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running,
        monkeypatch: pytest.MonkeyPatch, case: str, fix: str) -> None:
    wallet, chain = "eoa", {}
    if case == "approvals":
        chain = {"approve": False}  # and none is in place
    elif case == "api_key":  # credentials the sim issued to another signer
        creds = derive_key(Account.create().address, 0)
        monkeypatch.setenv("PF_CLOB_API_KEY", creds.key)
        monkeypatch.setenv("PF_CLOB_API_SECRET", creds.secret)
        monkeypatch.setenv("PF_CLOB_API_PASSPHRASE", creds.passphrase)
    else:
        wallet = "proxy"  # never deployed: the SDK cannot create one
    scanner = await start(tmp_path, sim, r, running, {"execute": True, "kinds": ["buy_both"], "chain": chain},
                          polymarket={"wallet": wallet})
    err = await _setup_error(r, keys)
    assert fix in err.detail["fix"]
    assert scanner.executor is None
    await _arm(sim, "v1")  # an opportunity: published, never traded
    await eventually(lambda: _published(r, keys), timeout=20)
    assert await audits(r, keys, "arb.executed") == []
    assert [o for o in await sim_get(sim, "/_sim/orders") if o["maker_address"].lower() == ME] == []  # no order
    assert await sim_get(sim, "/_sim/rpc/txs", address=ME) == []  # no transaction either
    assert len(await audits(r, keys, "arb.setup_error")) == 1  # one error, not one per opportunity


async def _published(r: aioredis.Redis, keys: Keys) -> bool:
    return any(o.verdict == "opportunity" for o in await base.opportunities(r, keys))


def test_paper_mode_refuses_execution(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "c.yaml", 1, {"mode": "paper", "arbitrage": {"execute": True}}),
                             environ={})
    with pytest.raises(ConfigError, match="paper mode"):  # paper mode never trades, not even arbitrage
        check_execution_mode(settings)
