"""On-chain merge/split/convert (ChainCtf) against sim_exchange's JSON-RPC endpoint: real signed
EIP-1559 transactions, real JSON-RPC 2.0 over HTTP, the sender recovered from the signature and
the calldata decoded by the sim. Then the scanner's execution with ``arbitrage.chain.ctf: rpc``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from eth_account import Account

from services.arb_scanner.chain_ctf import ChainCtf, EthRpc
from services.arb_scanner.ctf import CtfHalt, CtfRejected, check_execution_mode, make_ctf
from shared.config import SIM_PRIVATE_KEY, ArbChainSection, ConfigError, Secrets, load_settings
from shared.keys import Keys
from shared.venue.ctf_calls import ChainAddresses
from shared.venue.environment import VenueEnvironment, fetch_sim_environment, production
from tests.integration import test_arb_scanner as base
from tests.integration.test_arb_scanner import Running, arm_ask_sum_095, audits, start
from tests.support import SimExchangeProcess, eventually, write_config

sim = base.sim  # 2 binary markets and one 3-outcome neg-risk event
running = base.running
ME = Account.from_key(SIM_PRIVATE_KEY).address.lower()


@pytest.fixture
async def env(sim: SimExchangeProcess) -> VenueEnvironment:
    return await fetch_sim_environment(sim.url)


@pytest.fixture
async def chain(sim: SimExchangeProcess, env: VenueEnvironment) -> AsyncIterator[ChainCtf]:
    ctf = ChainCtf(EthRpc(f"{sim.url}/_sim/rpc"), SIM_PRIVATE_KEY, env,
                   ArbChainSection(receipt_timeout_sec=1.0, receipt_poll_sec=0.05))
    yield ctf
    await ctf.aclose()


async def _get(sim: SimExchangeProcess, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient() as c:
        resp = await c.get(f"{sim.url}{path}", params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()


async def _fault(sim: SimExchangeProcess, kind: str, count: int = 1) -> None:
    async with httpx.AsyncClient() as c:
        assert (await c.post(f"{sim.url}/_sim/rpc/fault", json={"kind": kind, "count": count})).status_code == 200


async def test_split_merge_convert_are_signed_transactions_applied_to_the_sender(
        sim: SimExchangeProcess, chain: ChainCtf, env: VenueEnvironment) -> None:
    m = (await _get(sim, "/_sim/markets"))[0]
    cid, yes, no = m["condition_id"], m["tokens"][0]["token_id"], m["tokens"][1]["token_id"]
    h1 = await chain.split(cid, 10)
    h2 = await chain.merge(cid, 4)
    event = (await _get(sim, "/_sim/events"))[0]
    first = event["outcomes"][0]
    await chain.split(first["condition_id"], 5, neg_risk=True)
    await chain.convert(event["neg_risk_market_id"], [0], 5)
    txs = await _get(sim, "/_sim/rpc/txs", address=ME)
    assert [t["hash"] for t in txs[:2]] == [h1, h2]
    assert [(t["call"], t["nonce"], t["status"]) for t in txs] == [
        ("ctf_split", 0, 1), ("ctf_merge", 1, 1), ("ctf_split", 2, 1), ("nr_convert", 3, 1)]
    d = ChainAddresses.from_environment(env.address)
    assert [t["to"] for t in txs] == [d.ctf_collateral_adapter.lower(), d.ctf_collateral_adapter.lower(),
                                      d.neg_risk_collateral_adapter.lower(), d.neg_risk_adapter.lower()]
    acct = (await _get(sim, "/_sim/positions", address=ME))[ME]
    assert acct["positions"][yes] == pytest.approx(6)
    assert acct["positions"][no] == pytest.approx(6)
    assert acct["positions"][first["no"]] == pytest.approx(0)  # converted
    assert [acct["positions"][o["yes"]] for o in event["outcomes"]] == [pytest.approx(5)] * 3
    assert acct["cash"] == pytest.approx(10_000 - 10 + 4 - 5)
    ops = await _get(sim, "/_sim/ctf/ops", address=ME)  # the same bookkeeping as /_sim/ctf
    assert [o["kind"] for o in ops] == ["split", "merge", "split", "convert"]


async def test_a_call_that_would_revert_is_refused_before_sending(sim: SimExchangeProcess, chain: ChainCtf) -> None:
    event = (await _get(sim, "/_sim/events"))[0]
    with pytest.raises(CtfRejected, match="eth_estimateGas"):  # binary adapter for a neg-risk market
        await chain.split(event["outcomes"][0]["condition_id"], 5, neg_risk=False)
    assert await _get(sim, "/_sim/rpc/txs") == []


async def test_a_reverted_receipt_is_a_failure_and_changes_nothing(sim: SimExchangeProcess, chain: ChainCtf) -> None:
    cid = (await _get(sim, "/_sim/markets"))[0]["condition_id"]
    await _fault(sim, "revert")
    with pytest.raises(CtfRejected, match="reverted") as info:
        await chain.split(cid, 10)
    assert not isinstance(info.value, CtfHalt)
    assert (await _get(sim, "/_sim/positions", address=ME))[ME]["cash"] == pytest.approx(10_000)
    await chain.split(cid, 10)  # the next one goes through, on the next nonce
    assert [(t["nonce"], t["status"]) for t in await _get(sim, "/_sim/rpc/txs")] == [(0, 0), (1, 1)]


async def test_a_dropped_tx_is_resent_with_the_same_bytes_and_mined_once(
        sim: SimExchangeProcess, chain: ChainCtf) -> None:
    cid = (await _get(sim, "/_sim/markets"))[0]["condition_id"]
    await _fault(sim, "drop")
    tx_hash = await chain.split(cid, 10)  # no receipt; half-way the same signed bytes go again
    txs = await _get(sim, "/_sim/rpc/txs")
    assert [(t["hash"], t["nonce"]) for t in txs] == [(tx_hash, 0)]
    assert (await _get(sim, "/_sim/positions", address=ME))[ME]["cash"] == pytest.approx(10_000 - 10)


async def test_no_receipt_at_all_is_an_unknown_outcome(sim: SimExchangeProcess, chain: ChainCtf) -> None:
    cid = (await _get(sim, "/_sim/markets"))[0]["condition_id"]
    await _fault(sim, "drop", 2)
    with pytest.raises(CtfHalt, match="outcome unknown"):
        await chain.split(cid, 10)
    assert await _get(sim, "/_sim/rpc/txs") == []


async def test_approvals_are_read_first_and_sent_once(sim: SimExchangeProcess, chain: ChainCtf,
                                                     env: VenueEnvironment) -> None:
    first = await chain.ensure_approvals()
    assert len(first) == 5  # pUSD to both collateral adapters; CTF to them and the NegRiskAdapter
    assert await chain.ensure_approvals() == []  # eth_call reads them back: nothing sent twice
    txs = await _get(sim, "/_sim/rpc/txs", address=ME)
    assert [(t["call"], t["status"]) for t in txs] == [("erc20_approve", 1)] * 2 + [
        ("erc1155_set_approval_for_all", 1)] * 3
    assert txs[0]["args"]["amount"] == 2**256 - 1
    # the NegRiskAdapter split path also pulls pUSD: one more approve, the rest already in place
    via_adapter = ChainCtf(chain.rpc, SIM_PRIVATE_KEY, env,
                           ArbChainSection(neg_risk_split_via="neg_risk_adapter", receipt_poll_sec=0.05))
    assert [x.split(":")[0] for x in await via_adapter.ensure_approvals()] == [
        f"pUSD approve {env.address('neg_risk_adapter')}"]


async def test_wrong_chain_is_refused(sim: SimExchangeProcess, env: VenueEnvironment) -> None:
    other_chain = VenueEnvironment("other", {**env.config, "chain_id": 80002})
    ctf = ChainCtf(EthRpc(f"{sim.url}/_sim/rpc"), SIM_PRIVATE_KEY, other_chain, ArbChainSection())
    try:
        with pytest.raises(CtfRejected, match="chain 137, not 80002"):
            await ctf.merge("0x" + "00" * 32, 1)
    finally:
        await ctf.aclose()


def test_make_ctf_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    def settings(**over: Any) -> Any:
        return load_settings(write_config(tmp_path / "c.yaml", 1, over), environ={})

    env = production()

    rpc = Secrets(polygon_rpc_url="http://127.0.0.1:1/rpc")
    with pytest.raises(ConfigError, match="relayer"):
        make_ctf(settings(arbitrage={"chain": {"ctf": "rpc"}}, polymarket={"wallet": "safe"}), ME, rpc, env)
    with pytest.raises(ConfigError, match="PF_POLYGON_RPC_URL"):
        make_ctf(settings(arbitrage={"chain": {"ctf": "rpc"}}), ME, Secrets(), env)
    with pytest.raises(ConfigError, match="signs for"):
        make_ctf(settings(arbitrage={"chain": {"ctf": "rpc"}}), "0x" + "11" * 20, rpc, env)
    with pytest.raises(ConfigError, match="only in sim mode"):
        make_ctf(settings(mode="paper", arbitrage={"chain": {"ctf": "sim_api"}}), ME, rpc, env)
    with pytest.raises(ConfigError, match="paper mode"):  # paper mode never trades, not even arbitrage
        check_execution_mode(settings(mode="paper", arbitrage={"execute": True}))
    with pytest.raises(ConfigError, match="paper mode"):
        make_ctf(settings(mode="paper", arbitrage={"execute": True, "chain": {"ctf": "rpc"}}), ME, rpc, env)
    assert isinstance(make_ctf(settings(arbitrage={"chain": {"ctf": "rpc"}}), ME, rpc, env), ChainCtf)


async def test_scanner_execution_merges_on_chain(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_POLYGON_RPC_URL", f"{sim.url}/_sim/rpc")
    scanner = await start(tmp_path, sim, r, running, {"execute": True, "kinds": ["buy_both"],
                                                       "chain": {"ctf": "rpc", "receipt_poll_sec": 0.05}})
    await eventually(lambda: _ready(r, keys, scanner), timeout=20)
    assert isinstance(scanner.ctf, ChainCtf)
    cid, yes, no = await arm_ask_sum_095(sim)
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=20)
    d = done[0].detail
    assert d["status"] == "done", d
    assert d["merged"] == pytest.approx(48)
    assert d["pnl"] == pytest.approx(2.24)
    txs = await _get(sim, "/_sim/rpc/txs", address=ME)
    d = ChainAddresses.from_environment((await fetch_sim_environment(sim.url)).address)
    # at start: the approvals the position calls need (2 pUSD approve, 3 CTF setApprovalForAll), then the merge
    assert [(t["call"], t["to"], t["args"]["spender"]) for t in txs[:5]] == [
        ("erc20_approve", d.collateral.lower(), d.ctf_collateral_adapter.lower()),
        ("erc20_approve", d.collateral.lower(), d.neg_risk_collateral_adapter.lower()),
        ("erc1155_set_approval_for_all", d.conditional_tokens.lower(), d.ctf_collateral_adapter.lower()),
        ("erc1155_set_approval_for_all", d.conditional_tokens.lower(), d.neg_risk_collateral_adapter.lower()),
        ("erc1155_set_approval_for_all", d.conditional_tokens.lower(), d.neg_risk_adapter.lower())]
    assert [(t["call"], t["args"]["condition_id"], t["args"]["amount"], t["status"]) for t in txs[5:]] == [
        ("ctf_merge", cid, 48, 1)]
    assert len(await audits(r, keys, "arb.approvals")) == 1
    acct = (await _get(sim, "/_sim/positions", address=ME))[ME]
    assert acct["positions"][yes] == pytest.approx(0)
    assert acct["positions"][no] == pytest.approx(0)
    assert acct["cash"] == pytest.approx(10_000 + 2.24)


async def _ready(r: aioredis.Redis, keys: Keys, scanner: Any) -> bool:
    tokens = {t for s in scanner.sets.values() for t in s.tokens}
    return await r.hlen(keys.arb_catalogue()) == 5 and bool(tokens) and tokens <= set(scanner.tops)


async def _merge_on_chain_with_fault(tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys,
                                     running: Running, monkeypatch: pytest.MonkeyPatch, fault: str,
                                     count: int) -> tuple[Any, str]:
    """A scanner merging on chain, ready; the next ``count`` transactions get ``fault``; then the
    ask sum 0.95 arms: (scanner, condition id)."""
    monkeypatch.setenv("PF_POLYGON_RPC_URL", f"{sim.url}/_sim/rpc")
    scanner = await start(tmp_path, sim, r, running, {"execute": True, "kinds": ["buy_both"], "chain": {
        "ctf": "rpc", "receipt_poll_sec": 0.05, "receipt_timeout_sec": 1.0}})
    await eventually(lambda: _ready(r, keys, scanner), timeout=20)
    await _fault(sim, fault, count)
    cid, _yes, _no = await arm_ask_sum_095(sim)
    return scanner, cid


async def test_scanner_halts_when_a_merge_has_no_receipt(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the merge and its one resend are both dropped
    scanner, _ = await _merge_on_chain_with_fault(tmp_path, sim, r, keys, running, monkeypatch, "drop", 2)
    halted = await eventually(lambda: audits(r, keys, "arb.halted"), timeout=20)
    assert "outcome unknown" in halted[0].reason
    report = halted[0].detail["execution"]
    assert report["status"] == "unknown"
    assert [leg["filled"] for leg in report["legs"]] == [pytest.approx(48)] * 2  # both legs bought, not merged
    assert scanner.executor is None  # no more trading until a person looks
    assert await audits(r, keys, "arb.executed") == []
    assert [t["call"] for t in await _get(sim, "/_sim/rpc/txs")
            if not t["call"].startswith("erc")] == []  # only the start-up approvals were mined
    claim = await r.hget(keys.reserved(), "arb:" + report["set"])
    assert claim is not None  # the set's budget claim stays while the outcome is unknown
    assert float(claim) > 40


async def test_scanner_goes_on_when_a_merge_reverts(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, running: Running,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the sibling of the halt above: a rejected merge (CtfRejected) changed nothing, so the sets are
    # held and booked, and execution stays on
    # the merge is mined with status 0
    scanner, cid = await _merge_on_chain_with_fault(tmp_path, sim, r, keys, running, monkeypatch, "revert", 1)
    done = await eventually(lambda: audits(r, keys, "arb.executed"), timeout=20)
    d = done[0].detail
    assert d["status"] == "partial"
    assert d["merged"] == 0
    assert d["held_sets"] == pytest.approx(48)
    assert any("reverted" in e for e in d["errors"])
    assert await audits(r, keys, "arb.halted") == []
    assert scanner.executor is not None  # still trading
    assert await r.hexists(keys.arb_held(), cid)  # held to resolution, redeemed when it resolves
    assert [(t["call"], t["status"]) for t in await _get(sim, "/_sim/rpc/txs")
            if not t["call"].startswith("erc")] == [("ctf_merge", 0)]
