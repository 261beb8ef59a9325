"""The sim's Polygon log side, pure: every Data-API trade is a settlement transaction whose
OrderFilled logs read back (shared.venue.chain_fills) as the same trade, and eth_getLogs /
eth_blockNumber / eth_getBlockByNumber answer and refuse as a node does (docs/venue.md K1-K4)."""

from __future__ import annotations

from typing import Any

import pytest

from services.signal_collector.signals import signal_id
from services.sim_exchange.chainlog import crowd_address
from services.sim_exchange.logfilter import BadFilter, parse_filter
from services.sim_exchange.rpc import RpcFault, SimChain
from services.sim_exchange.signatures import exchange_for
from services.sim_exchange.state import SimState
from shared.config import SimExchangeSection
from shared.venue.chain_fills import TOPICS, address_topic, decode_log, wallet_trades
from shared.venue.data_api import parse_trade

W = "0x00000000000000000000000000000000000a11ce"


def _state(**cfg: Any) -> SimState:
    return SimState(SimExchangeSection(markets=2, volatility=0.0, v2_share=0.5, **cfg), 137)


def _trade(state: SimState, token: str, maker: bool = False, tx: str | None = None, **row: Any) -> dict[str, Any]:
    raw = {"proxyWallet": W, "side": "BUY", "asset": token, "size": 12.5, "price": 0.37, **row}
    if tx:
        raw["transactionHash"] = tx
    stored = state.external_trade(state.feed.make_row(raw), maker=maker)
    return stored


def _logs(chain: SimChain, **flt: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = chain.handle("eth_getLogs", [{"fromBlock": "earliest", **flt}])
    return out


def _trades_of(logs: list[dict[str, Any]], chain: SimChain) -> list[Any]:
    fills = [decode_log(x) for x in logs]
    times = {f.block: int(chain.handle("eth_getBlockByNumber", [hex(f.block), False])["timestamp"], 16) for f in fills}
    return wallet_trades(W, fills, times)


@pytest.mark.parametrize("maker", [False, True])
def test_a_trade_row_is_two_logs_that_read_back_as_the_rows_trade(maker: bool) -> None:
    state = _state()
    chain = SimChain(state, 137)
    for market in state.sim.markets:  # a v1 and a v2 market: each on its own exchange
        row = _trade(state, market.yes.token_id, maker=maker)
        logs = [x for x in _logs(chain) if x["transactionHash"] == row["transactionHash"]]
        assert len(logs) == 2
        assert len({x["blockNumber"] for x in logs}) == 1
        exchange = exchange_for(state.env, market.version, market.neg_risk).address.lower()
        assert {x["address"] for x in logs} == {exchange}
        fills = [decode_log(x) for x in logs]
        assert [(f.maker, f.taker) for f in fills] == (
            [(W, crowd_address()), (crowd_address(), exchange)] if maker else
            [(crowd_address(), W), (W, exchange)])
        [got] = _trades_of(logs, chain)
        api = parse_trade(row)
        assert (got.side, got.token_id, got.size, got.price) == ("BUY", market.yes.token_id, 12.5, 0.37)
        assert signal_id(W, got) == signal_id(W, api)


def test_one_transaction_is_one_block_and_blocks_never_go_back_in_time() -> None:
    state = _state()
    chain = SimChain(state, 137)
    token = state.sim.markets[0].yes.token_id
    head0 = int(chain.handle("eth_blockNumber", []), 16)
    tx = "0x" + "ab" * 32
    _trade(state, token, tx=tx, size=5, timestamp=2_000_000_000)
    _trade(state, token, tx=tx, size=6, timestamp=2_000_000_000)  # the same settlement: the same block
    _trade(state, token, size=7, timestamp=1_000_000_000)  # dated before the head: lands at the head's time
    assert int(chain.handle("eth_blockNumber", []), 16) == head0 + 2
    b1, b2 = (chain.handle("eth_getBlockByNumber", [hex(head0 + i), False]) for i in (1, 2))
    assert b1["transactions"] == [tx]
    assert int(b1["timestamp"], 16) == 2_000_000_000
    assert int(b2["timestamp"], 16) == 2_000_000_000
    assert b2["parentHash"] == b1["hash"]
    in_b1 = chain.handle("eth_getLogs", [{"blockHash": b1["hash"]}])
    assert [x["logIndex"] for x in in_b1] == ["0x0", "0x1", "0x2", "0x3"]
    assert chain.handle("eth_getBlockByNumber", [hex(head0 + 3), False]) is None


def test_filters_select_by_contract_and_the_indexed_maker_or_taker() -> None:
    state = _state()
    chain = SimChain(state, 137)
    _trade(state, state.sim.markets[0].yes.token_id)  # W took: the crowd's log names W as taker
    me = address_topic(W)
    assert len(_logs(chain, topics=[list(TOPICS), None, [me]])) == 1  # W's own (taker-order) log
    assert len(_logs(chain, topics=[list(TOPICS), None, None, me])) == 1  # the crowd's, W as taker
    assert len(_logs(chain, topics=[None, None, [me, address_topic(crowd_address())]])) == 2
    assert _logs(chain, address="0x" + "00" * 20) == []


def test_eth_get_logs_refuses_what_a_node_refuses() -> None:
    state = _state(rpc_max_log_blocks=3, rpc_max_logs=2)
    chain = SimChain(state, 137)
    token = state.sim.markets[0].yes.token_id
    for _ in range(3):
        _trade(state, token)
    state.chain.seal()
    head = state.chain.head

    def refused(flt: dict[str, Any]) -> tuple[int, str]:
        with pytest.raises(RpcFault) as info:
            chain.handle("eth_getLogs", [flt])
        return info.value.code, info.value.message

    assert refused({"fromBlock": hex(head), "toBlock": hex(head - 1)}) == (-32602, "invalid block range params")
    assert refused({"fromBlock": hex(head), "toBlock": hex(head + 1)}) == (
        -32602, "block range extends beyond current head block")
    assert refused({"fromBlock": hex(head - 3), "toBlock": hex(head)}) == (-32602, "query exceeds max block range 3")
    assert refused({"fromBlock": hex(head - 2), "toBlock": hex(head)}) == (-32005, "query returned more than 2 results")
    assert len(chain.handle("eth_getLogs", [{"fromBlock": hex(head), "toBlock": "latest"}])) == 2
    assert refused({"topics": [None] * 5})[0] == -32602


@pytest.mark.parametrize(("flt", "error"), [
    ("nope", "must be an object"),
    ({"topics": [None, None, None, None, None]}, "exceed max topics"),
    ({"topics": [["0x" + "00" * 32] * 1001]}, "per search position"),
    ({"address": "0x12"}, "not a address"),
    ({"blockHash": "0x" + "00" * 32, "fromBlock": "0x1"}, "cannot specify both"),
    ({"fromBlock": "yesterday"}, "invalid block number"),
])
def test_a_malformed_filter_is_invalid_params(flt: Any, error: str) -> None:
    with pytest.raises(BadFilter, match=error):
        parse_filter(flt)


def test_a_logs_subscription_takes_new_blocks_only() -> None:
    assert parse_filter({"topics": [TOPICS[0]]}, subscription=True).from_block == "latest"
    with pytest.raises(BadFilter, match="new blocks only"):
        parse_filter({"fromBlock": "0x1"}, subscription=True)


def test_sealing_hands_each_blocks_logs_to_the_listeners_once() -> None:
    state = _state()
    seen: list[list[str]] = []
    state.chain.listeners.append(lambda logs: seen.append([x["blockNumber"] for x in logs]))
    _trade(state, state.sim.markets[0].yes.token_id)
    assert seen == []  # still being built: nobody has read the chain
    state.chain.seal()
    state.chain.seal()
    assert [len(logs) for logs in seen] == [2]
