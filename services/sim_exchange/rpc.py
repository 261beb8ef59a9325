"""A Polygon JSON-RPC node in miniature (pure): enough for the arbitrage's merge/split/convert/redeem.

Real signed EIP-1559 transactions come in through ``eth_sendRawTransaction``; the sender is
recovered from the signature (eth-account), the chain id and nonce are checked like a node does,
the calldata is decoded by selector (``shared.venue.ctf_calls``) and the same bookkeeping as
``/_sim/ctf/*`` is applied to the sender's sim account. Each accepted transaction is mined at
once (one block each) and gets a receipt: status 1, or status 0 when the call would revert on the
contract (wrong contract for the market, unknown condition, not enough shares or collateral).

The contracts it knows are the defaults of ``arbitrage.chain`` (the Polygon addresses); a call to
any other address reverts. Approvals: pUSD ``approve``/``allowance`` and ConditionalTokens
``setApprovalForAll``/``isApprovedForAll`` (``eth_call`` for the reads) are accepted and
recorded, **not enforced**: a position call without them still succeeds here (on Polygon it would
revert), so the scanner's start-up approvals are tested by what they read and send. Faults for tests: ``revert`` (the next N transactions are mined with
status 0) and ``drop`` (the next N are accepted, answered with their hash and then forgotten: no
receipt, nonce not used, so the same signed bytes can be sent again). Gas is not charged: the sim
account holds pUSD only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from services.sim_exchange.ctf import CtfError
from services.sim_exchange.environment import environment_json
from services.sim_exchange.state import SimState
from shared.venue.ctf_calls import (
    BINARY_PARTITION,
    ZERO32,
    BadCall,
    ChainAddresses,
    CtfCall,
    decode_approval,
    decode_call,
)

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


@dataclass
class ChainFaults:
    revert: int = 0
    drop: int = 0


def _hex(n: int) -> str:
    return hex(n)


@dataclass
class SimChain:
    state: SimState
    chain_id: int
    nonces: dict[str, int] = field(default_factory=dict)
    txs: dict[str, SimTx] = field(default_factory=dict)
    block: int = 1_000
    faults: ChainFaults = field(default_factory=ChainFaults)
    # (token contract, owner, spender) -> pUSD allowance in base units, or 1/0 for setApprovalForAll
    approvals: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = ChainAddresses.from_environment(lambda name: str(environment_json("sim", self.chain_id)[name]))
        self.collateral = d.collateral.lower()
        self.tokens = {d.collateral.lower(): "erc20", d.conditional_tokens.lower(): "erc1155"}
        self.contracts = {d.ctf_collateral_adapter.lower(): "ctf_collateral_adapter",
                          d.neg_risk_collateral_adapter.lower(): "neg_risk_collateral_adapter",
                          d.neg_risk_adapter.lower(): "neg_risk_adapter"}

    # ---- JSON-RPC methods -----------------------------------------------------------------------
    def handle(self, method: str, params: list[Any]) -> Any:
        if method == "eth_chainId":
            return _hex(self.chain_id)
        if method == "eth_blockNumber":
            return _hex(self.block)
        if method == "eth_gasPrice":
            return _hex(GAS_PRICE)
        if method == "eth_maxPriorityFeePerGas":
            return _hex(PRIORITY_FEE)
        if method == "eth_getTransactionCount":
            return _hex(self.nonces.get(str(params[0]).lower(), 0))
        if method == "eth_call":
            return self.read(params[0] if params and isinstance(params[0], dict) else {})
        if method == "eth_estimateGas":
            call = params[0] if params and isinstance(params[0], dict) else {}
            try:
                if str(call.get("to", "")).lower() in self.tokens:
                    self._approval(str(call.get("to", "")).lower(), "", bytes.fromhex(str(call["data"])[2:]), dry=True)
                    return _hex(GAS_ESTIMATE // 4)
                self._route(str(call.get("to", "")).lower(), decode_call(bytes.fromhex(str(call["data"])[2:])))
            except (BadCall, CtfError, KeyError, ValueError) as exc:
                raise RpcFault(3, f"execution reverted: {exc}") from exc
            return _hex(GAS_ESTIMATE)
        if method == "eth_sendRawTransaction":
            return self.send_raw(str(params[0]))
        if method == "eth_getTransactionReceipt":
            tx = self.txs.get(str(params[0]).lower())
            return None if tx is None else self.receipt(tx)
        raise RpcFault(-32601, f"the method {method} does not exist/is not available")

    def send_raw(self, raw_hex: str) -> str:
        try:
            raw = bytes.fromhex(raw_hex.removeprefix("0x"))
            tx = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            sender = str(Account.recover_transaction(raw)).lower()
        except Exception as exc:  # eth-account raises several types for a malformed tx
            raise RpcFault(-32602, f"invalid raw transaction: {exc}") from exc
        tx_hash = "0x" + keccak(raw).hex()
        if tx_hash in self.txs:
            raise RpcFault(-32000, "already known")
        if int(tx["chainId"]) != self.chain_id:
            raise RpcFault(-32000, f"invalid chain id {tx['chainId']} (this chain is {self.chain_id})")
        expected = self.nonces.get(sender, 0)
        if int(tx["nonce"]) < expected:
            raise RpcFault(-32000, f"nonce too low: next nonce {expected}, tx nonce {tx['nonce']}")
        if int(tx["nonce"]) > expected:
            raise RpcFault(-32000, f"nonce too high: next nonce {expected}, tx nonce {tx['nonce']}")
        if int(tx["gas"]) < 21_000:
            raise RpcFault(-32000, "intrinsic gas too low")
        if self.faults.drop > 0:
            self.faults.drop -= 1
            return tx_hash  # accepted, never mined
        to = "0x" + bytes(tx["to"]).hex()
        self.nonces[sender] = expected + 1
        self.block += 1
        call_name, status, reason = "", 1, ""
        args: dict[str, Any] = {}
        if to.lower() in self.tokens:
            try:
                call_name, args = self._approval(to.lower(), sender, bytes(tx["data"]))
            except BadCall as exc:
                status, reason = 0, str(exc)
            self.txs[tx_hash] = SimTx(tx_hash, sender, to, int(tx["nonce"]), call_name, args, status, self.block, reason)
            return tx_hash
        try:
            call = decode_call(bytes(tx["data"]))
            call_name, args = call.name, {k: v for k, v in asdict(call).items() if k not in ("name", "parent")}
            if self.faults.revert > 0:
                self.faults.revert -= 1
                raise CtfError("reverted (fault)")
            self._apply(sender, to, call)
        except (BadCall, CtfError) as exc:
            status, reason = 0, str(exc)
        self.txs[tx_hash] = SimTx(tx_hash, sender, to, int(tx["nonce"]), call_name, args, status, self.block, reason)
        return tx_hash

    def receipt(self, tx: SimTx) -> dict[str, Any]:
        return {"transactionHash": tx.hash, "blockNumber": _hex(tx.block), "from": tx.sender, "to": tx.to,
                "status": _hex(tx.status), "gasUsed": _hex(GAS_ESTIMATE // 2), "effectiveGasPrice": _hex(GAS_PRICE),
                "logs": [], "type": "0x2"}

    # ---- approvals (recorded, not enforced) ----------------------------------------------------
    def _approval(self, token: str, sender: str, data: bytes, dry: bool = False) -> tuple[str, dict[str, Any]]:
        name, args = decode_approval(data)
        kind = self.tokens[token]
        if name == "erc20_approve" and kind == "erc20":
            spender, amount = str(args[0]).lower(), int(args[1])
        elif name == "erc1155_set_approval_for_all" and kind == "erc1155":
            spender, amount = str(args[0]).lower(), int(bool(args[1]))
        else:
            raise BadCall(f"{name} is not a transaction on the {kind} contract")
        if not dry:
            self.approvals[(token, sender, spender)] = amount
        return name, {"spender": spender, "amount": amount}

    def read(self, call: dict[str, Any]) -> str:
        """``eth_call`` of ``allowance`` (pUSD) or ``isApprovedForAll`` (ConditionalTokens)."""
        token = str(call.get("to", "")).lower()
        try:
            name, args = decode_approval(bytes.fromhex(str(call.get("data", "0x"))[2:]))
        except (BadCall, ValueError) as exc:
            raise RpcFault(3, f"execution reverted: {exc}") from exc
        reads = {"erc20": "erc20_allowance", "erc1155": "erc1155_is_approved_for_all"}
        if token not in self.tokens or reads[self.tokens[token]] != name:
            raise RpcFault(3, f"execution reverted: no {name} at {token}")
        value = self.approvals.get((token, str(args[0]).lower(), str(args[1]).lower()), 0)
        return "0x" + f"{value:064x}"

    # ---- the contracts --------------------------------------------------------------------------
    def _route(self, to: str, call: CtfCall) -> str:
        """Which contract ``to`` is, after checking it takes this call for this market."""
        role = self.contracts.get(to)
        if role is None:
            raise CtfError(f"no contract at {to}")
        if call.name == "nr_convert":
            if role != "neg_risk_adapter":
                raise CtfError(f"{role} has no convertPositions")
            if self.state.event(call.condition_id) is None:
                raise CtfError(f"unknown neg-risk market {call.condition_id}")
            return role
        market = self.state.sim.by_condition.get(call.condition_id)
        if market is None:
            raise CtfError(f"condition {call.condition_id} not prepared")
        if call.name.endswith("redeem") and call.condition_id not in self.state.ctf.winners:
            raise CtfError("result for condition not received yet")  # ConditionalTokens' own revert text
        if call.name == "nr_redeem" and len(call.amounts) != 2:
            raise CtfError("amounts must be [YES, NO]")
        if call.name.startswith("nr_"):
            if role != "neg_risk_adapter" or not market.neg_risk:
                raise CtfError(f"{role} cannot {call.name} a {'neg-risk' if market.neg_risk else 'binary'} market")
            return role
        if role == "neg_risk_adapter":
            raise CtfError("the NegRiskAdapter takes the (bytes32, ...) shapes, not the ConditionalTokens one")
        if (role == "neg_risk_collateral_adapter") != market.neg_risk:
            raise CtfError(f"{role} cannot {call.name} a {'neg-risk' if market.neg_risk else 'binary'} market")
        if call.collateral.lower() != self.collateral or call.parent != ZERO32 or call.partition != BINARY_PARTITION:
            raise CtfError("unexpected collateral, parent collection or partition")
        return role

    def _apply(self, sender: str, to: str, call: CtfCall) -> None:
        self._route(to, call)
        ctf = self.state.ctf
        if call.name == "nr_convert":
            event = self.state.event(call.condition_id)
            assert event is not None
            ctf.convert(sender, event, list(call.outcome_indexes), call.amount)
            return
        market = self.state.sim.by_condition[call.condition_id]
        if call.name == "ctf_redeem":
            ctf.redeem(sender, market)
        elif call.name == "nr_redeem":
            ctf.redeem(sender, market, (call.amounts[0], call.amounts[1]))
        else:
            (ctf.split if call.name.endswith("split") else ctf.merge)(sender, market, call.amount)

    def log(self, address: str = "") -> list[dict[str, Any]]:
        return [asdict(t) for t in self.txs.values() if not address or t.sender == address.lower()]
