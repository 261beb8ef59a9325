"""A Polygon JSON-RPC node in miniature (pure): raw transactions from EOAs and view calls.

Signed transactions come in through ``eth_sendRawTransaction``: legacy EIP-155 ones (what the
official SDK sends for EOA wallets) and EIP-1559 ones (the arbitrage's ChainCtf). The sender is
recovered from the signature (eth-account), the chain id and nonce are checked like a node does,
and the call is executed on the sender's sim account by :mod:`contracts` (approvals, the CTF
adapters, the NegRiskAdapter, Protocol V2's Router). Each accepted transaction is mined at once
(one block each) and gets a receipt: status 1, or status 0 when the contract would revert (wrong
contract for the market, unknown condition, not enough shares or collateral, not resolved).
``eth_call`` answers the ERC-20/1155 views (``allowance``, ``balanceOf``, ``isApprovedForAll``,
``balanceOf``/``balanceOfBatch`` on ConditionalTokens, the NegRiskAdapter and PositionManager).

Blocks are the sim's one chain (:mod:`chainlog`): ``eth_blockNumber``, ``eth_getBlockByNumber``
and ``eth_getLogs`` read it, with a node's limits (docs/venue.md K4): a reversed range or one past
the head is refused (-32602), so is a range wider than ``sim_exchange.rpc_max_log_blocks`` and an
answer of more than ``rpc_max_logs`` logs (-32005). ``eth_subscribe`` needs the websocket
endpoint (:mod:`rpcws`); over HTTP it is refused as a node refuses it.

Faults for tests: ``revert`` (the next N transactions are mined with status 0), ``drop`` (the
next N are accepted, answered with their hash and then forgotten: no receipt, nonce not used, so
the same signed bytes can be sent again) and ``hide`` (the next N are mined, effects and nonce
applied, but their receipt is never answered, as from a node that lost them or lags: the sender
cannot tell they landed). Gas is not charged: the sim account holds pUSD only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from services.sim_exchange.contracts import CallReverted
from services.sim_exchange.logfilter import BadFilter, parse_filter
from services.sim_exchange.state import SimState

GAS_PRICE = 80 * 10**9
PRIORITY_FEE = 30 * 10**9
GAS_ESTIMATE = 200_000


class RpcFault(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SimTx:
    hash: str
    sender: str
    to: str
    nonce: int
    call: str
    args: dict[str, Any]
    status: int
    block: int
    reason: str = ""
    type: str = "0x2"
    hidden: bool = False  # mined, its receipt withheld (fault ``hide``)


@dataclass
class ChainFaults:
    revert: int = 0
    drop: int = 0
    hide: int = 0


def _hex(n: int) -> str:
    return hex(n)


def decode_raw(raw: bytes, chain_id: int) -> dict[str, Any]:
    """``{nonce, gas, to, data, chainId, type}`` of a signed legacy (EIP-155) or typed transaction."""
    if raw and raw[0] >= 0xC0:  # an RLP list: a legacy transaction
        nonce, _gas_price, gas, to, _value, data, v, _r, _s = rlp.decode(raw)
        v = int.from_bytes(v, "big")
        if v < 35:
            raise RpcFault(-32000, "only replay-protected (EIP-155) transactions allowed over RPC")
        return {"nonce": int.from_bytes(nonce, "big"), "gas": int.from_bytes(gas, "big"), "to": bytes(to),
                "data": bytes(data), "chainId": (v - 35) // 2, "type": "0x0"}
    tx = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    return {"nonce": int(tx["nonce"]), "gas": int(tx["gas"]), "to": bytes(tx["to"]), "data": bytes(tx["data"]),
            "chainId": int(tx["chainId"]), "type": hex(raw[0])}


@dataclass
class SimChain:
    state: SimState
    chain_id: int
    nonces: dict[str, int] = field(default_factory=dict)
    txs: dict[str, SimTx] = field(default_factory=dict)
    faults: ChainFaults = field(default_factory=ChainFaults)

    @property
    def approvals(self) -> dict[tuple[str, str, str], int]:
        return self.state.contracts.approvals

    @property
    def block(self) -> int:
        return self.state.chain.head

    def _number(self, tag: str) -> int:
        """A block tag or hex quantity; every tag but ``earliest`` is the head (no reorgs here)."""
        if tag.startswith("0x"):
            return int(tag, 16)
        return self.state.chain.first if tag == "earliest" else self.block

    def get_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        try:
            flt = parse_filter(params[0] if params else None)
        except BadFilter as exc:
            raise RpcFault(-32602, str(exc)) from exc
        chain, cfg = self.state.chain, self.state.cfg
        if flt.block_hash is not None:
            blk = next((b for b in chain.blocks.values() if b.hash == flt.block_hash), None)
            if blk is None:
                raise RpcFault(-32000, "unknown block")
            return [dict(log) for log in blk.logs if flt.matches(log)]
        start, end = self._number(flt.from_block), self._number(flt.to_block)
        if start > end:
            raise RpcFault(-32602, "invalid block range params")
        if end > self.block:
            raise RpcFault(-32602, "block range extends beyond current head block")
        if end - start + 1 > cfg.rpc_max_log_blocks:
            raise RpcFault(-32602, f"query exceeds max block range {cfg.rpc_max_log_blocks}")
        logs = [dict(log) for log in chain.logs_between(start, end) if flt.matches(log)]
        if len(logs) > cfg.rpc_max_logs:
            raise RpcFault(-32005, f"query returned more than {cfg.rpc_max_logs} results")
        return logs

    # ---- JSON-RPC methods -----------------------------------------------------------------------
    def handle(self, method: str, params: list[Any]) -> Any:
        self.state.chain.seal()  # a read never sees a block still being built
        if method == "eth_chainId":
            return _hex(self.chain_id)
        if method == "eth_blockNumber":
            return _hex(self.block)
        if method == "eth_getBlockByNumber":
            blk = self.state.chain.block(self._number(str(params[0]) if params else "latest"))
            return None if blk is None else blk.json()
        if method == "eth_getLogs":
            return self.get_logs(params)
        if method in ("eth_subscribe", "eth_unsubscribe"):
            raise RpcFault(-32601, "notifications not supported")
        if method == "eth_gasPrice":
            return _hex(GAS_PRICE)
        if method == "eth_maxPriorityFeePerGas":
            return _hex(PRIORITY_FEE)
        if method == "eth_getTransactionCount":
            return _hex(self.nonces.get(str(params[0]).lower(), 0))
        if method == "eth_call":
            call = params[0] if params and isinstance(params[0], dict) else {}
            try:
                return "0x" + self.state.contracts.read(str(call.get("to", "")), _data(call)).hex()
            except CallReverted as exc:
                raise RpcFault(3, str(exc)) from exc
        if method == "eth_estimateGas":
            call = params[0] if params and isinstance(params[0], dict) else {}
            try:
                self.state.contracts.execute(str(call.get("from", "")), str(call.get("to", "")), _data(call), dry=True)
            except (CallReverted, ValueError) as exc:
                raise RpcFault(3, f"execution reverted: {exc}") from exc
            return _hex(GAS_ESTIMATE)
        if method == "eth_sendRawTransaction":
            return self.send_raw(str(params[0]))
        if method == "eth_getTransactionReceipt":
            tx = self.txs.get(str(params[0]).lower())
            return None if tx is None or tx.hidden else self.receipt(tx)
        raise RpcFault(-32601, f"the method {method} does not exist/is not available")

    def send_raw(self, raw_hex: str) -> str:
        try:
            raw = bytes.fromhex(raw_hex.removeprefix("0x"))
            tx = decode_raw(raw, self.chain_id)
            sender = str(Account.recover_transaction(raw)).lower()
        except RpcFault:
            raise
        except Exception as exc:  # eth-account and rlp raise several types for a malformed tx
            raise RpcFault(-32602, f"invalid raw transaction: {exc}") from exc
        tx_hash = "0x" + keccak(raw).hex()
        if tx_hash in self.txs:
            raise RpcFault(-32000, "already known")
        if tx["chainId"] != self.chain_id:
            raise RpcFault(-32000, f"invalid chain id {tx['chainId']} (this chain is {self.chain_id})")
        expected = self.nonces.get(sender, 0)
        if tx["nonce"] < expected:
            raise RpcFault(-32000, f"nonce too low: next nonce {expected}, tx nonce {tx['nonce']}")
        if tx["nonce"] > expected:
            raise RpcFault(-32000, f"nonce too high: next nonce {expected}, tx nonce {tx['nonce']}")
        if tx["gas"] < 21_000:
            raise RpcFault(-32000, "intrinsic gas too low")
        if self.faults.drop > 0:
            self.faults.drop -= 1
            return tx_hash  # accepted, never mined
        to = "0x" + tx["to"].hex()
        self.nonces[sender] = expected + 1
        block = self.state.chain.mine(tx_hash)
        call_name, status, reason, args = "", 1, "", {}
        try:
            fault = self.faults.revert > 0
            self.faults.revert -= int(fault)
            done = self.state.contracts.execute(sender, to, tx["data"], dry=fault)
            call_name, args = done.name, done.args
            if fault:
                raise CallReverted("reverted (fault)", done.name)
        except CallReverted as exc:
            call_name, status, reason = exc.call, 0, str(exc)
        hidden = self.faults.hide > 0
        self.faults.hide -= int(hidden)
        self.txs[tx_hash] = SimTx(tx_hash, sender, to, tx["nonce"], call_name, args, status, block, reason,
                                  tx["type"], hidden)
        return tx_hash

    def receipt(self, tx: SimTx) -> dict[str, Any]:
        return {"transactionHash": tx.hash, "blockNumber": _hex(tx.block), "from": tx.sender, "to": tx.to,
                "status": _hex(tx.status), "gasUsed": _hex(GAS_ESTIMATE // 2), "effectiveGasPrice": _hex(GAS_PRICE),
                "logs": [], "type": tx.type}

    def log(self, address: str = "") -> list[dict[str, Any]]:
        return [asdict(t) for t in self.txs.values() if not address or t.sender == address.lower()]


def _data(call: dict[str, Any]) -> bytes:
    return bytes.fromhex(str(call.get("data") or call.get("input") or "0x").removeprefix("0x"))
