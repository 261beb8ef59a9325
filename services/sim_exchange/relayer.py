"""The relayer (pure): gasless transactions of smart wallets, as the official SDK sends them.

Deposit wallets are created here (``WALLET-CREATE``) and every call of a deposit, proxy or Safe
wallet comes through here, signed by the wallet's owner (docs/venue.md W4; sdk-wire §1.4, §10.2):

* ``WALLET`` — an EIP-712 ``Batch(wallet, nonce, deadline, Call[] calls)`` under the domain
  ``DepositWallet``/"1"/the wallet, signed by the owner EOA (``from``); the nonce is the wallet's
  (a mismatch is answered "batch nonce X does not match on-chain nonce Y", which the SDK heals).
* ``PROXY`` — ``proxy((uint8,address,uint256,bytes)[])`` to the proxy factory, the owner's
  personal_sign of ``keccak("rlx:" ‖ from ‖ to ‖ data ‖ fee ‖ gasPrice ‖ gasLimit ‖ nonce ‖ relayHub ‖ relay)``.
* ``SAFE`` — one ``CALL``, or a ``DELEGATECALL`` of ``multiSend(bytes)`` to the multisend
  contract; the owner's personal_sign of the EIP-712 ``SafeTx`` digest, v + 4.

The calls run in the wallet's account through :mod:`contracts`, all or nothing; a refused call
makes the transaction ``STATE_FAILED`` with the revert reason as ``error_msg``. Effects apply at
submission; the state then moves ``STATE_NEW`` → ``EXECUTED`` → ``MINED`` → ``CONFIRMED`` one
``relayer_step_ms`` at a time (the SDK waits for CONFIRMED), the hash appearing once executed. A
stalled transaction (the ``relayer_stall`` fault) stops at ``MINED``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from services.sim_exchange.accounts import RELAYER_TYPE, WalletBook, WalletError
from services.sim_exchange.contracts import CallReverted, Contracts, Done
from services.sim_exchange.environment import SimEnvironment, own_address

RELAY = own_address("relayer")  # the relayer's own EOA, which proxy signatures name
STATES = ("STATE_NEW", "STATE_EXECUTED", "STATE_MINED", "STATE_CONFIRMED")
_PROXY_SELECTOR = keccak(text="proxy((uint8,address,uint256,bytes)[])")[:4]
_MULTISEND_SELECTOR = keccak(text="multiSend(bytes)")[:4]
_DOMAIN = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
           {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
_BATCH = [{"name": "wallet", "type": "address"}, {"name": "nonce", "type": "uint256"},
          {"name": "deadline", "type": "uint256"}, {"name": "calls", "type": "Call[]"}]
_CALL = [{"name": "target", "type": "address"}, {"name": "value", "type": "uint256"}, {"name": "data", "type": "bytes"}]
_SAFE_TX = [{"name": n, "type": t} for n, t in (
    ("to", "address"), ("value", "uint256"), ("data", "bytes"), ("operation", "uint8"), ("safeTxGas", "uint256"),
    ("baseGas", "uint256"), ("gasPrice", "uint256"), ("gasToken", "address"), ("refundReceiver", "address"),
    ("nonce", "uint256"))]
_ZERO = "0x" + "00" * 20


class RelayerError(ValueError):
    """A refused submission (answered 400 with this text)."""


@dataclass
class RelayerTx:
    id: str
    type: str
    owner: str
    wallet: str
    metadata: str
    submitted: float
    hash: str = field(default_factory=lambda: "0x" + uuid.uuid4().hex + uuid.uuid4().hex)
    calls: list[Done] = field(default_factory=list)
    error: str = ""
    stalled: bool = False  # never reaches STATE_CONFIRMED (fault ``relayer_stall``)

    def state(self, now: float, step_s: float) -> str:
        steps = int((now - self.submitted) / step_s + 1e-6) if step_s > 0 else len(STATES)
        if self.error:
            return "STATE_NEW" if steps < 1 else "STATE_FAILED"
        return STATES[min(steps, len(STATES) - (2 if self.stalled else 1))]

    def as_json(self, now: float, step_s: float) -> dict[str, Any]:
        state = self.state(now, step_s)
        out: dict[str, Any] = {
            "transaction_id": self.id, "state": state, "type": self.type, "from": self.owner,
            "proxy_address": self.wallet, "metadata": self.metadata,
            "transaction_hash": "" if state == "STATE_NEW" else self.hash,
            "calls": [{"call": d.name, "args": {k: str(v) for k, v in d.args.items()}} for d in self.calls],
        }
        if state == "STATE_FAILED":
            out["error_msg"] = self.error
        return out


def _bytes(value: object) -> bytes:
    try:
        return bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError as exc:
        raise RelayerError(f"not hex: {str(value)[:20]}") from exc


def _address(value: object, name: str) -> str:
    try:
        return to_checksum_address(str(value))
    except ValueError as exc:
        raise RelayerError(f"{name} is not an address: {value!r}") from exc


def _recover(message: Any, signature: object) -> str:
    try:
        return str(Account.recover_message(message, signature=_bytes(signature))).lower()
    except Exception as exc:  # malformed signature
        raise RelayerError("invalid signature") from exc


class Relayer:
    def __init__(self, env: SimEnvironment, wallets: WalletBook, contracts: Contracts, step_s: float,
                 clock: Callable[[], float] = time.time, stall: Callable[[], bool] = lambda: False) -> None:
        self.env = env
        self.wallets = wallets
        self.contracts = contracts
        self.step_s = step_s
        self.clock = clock
        self.stall = stall  # the relayer_stall fault: does this transaction stop at STATE_MINED?
        self.txs: dict[str, RelayerTx] = {}

    # ---- reads ----------------------------------------------------------------------------------
    def deployed(self, address: str, kind: str | None) -> bool:
        wanted = RELAYER_TYPE.get(kind or "")
        return self.wallets.deployed(address, wanted) is not None

    def params(self, owner: str, kind: str) -> dict[str, str]:
        """The wallet of ``owner`` and its next nonce (``/v1/account/transactions/params``)."""
        if kind not in ("WALLET", "SAFE", "PROXY"):
            raise RelayerError(f"unknown type {kind!r}: WALLET, SAFE or PROXY")
        wallet = self.wallets.address_of(_address(owner, "address"), RELAYER_TYPE[kind])
        return {"address": to_checksum_address(wallet), "nonce": str(self.wallets.nonce(wallet))}

    def relay_payload(self, owner: str, kind: str) -> dict[str, str]:
        """The relay and the proxy's next nonce (``/relay-payload``)."""
        return {"address": RELAY, "nonce": self.params(owner, kind)["nonce"]}

    def view(self, tx_id: str) -> dict[str, Any] | None:
        tx = self.txs.get(tx_id)
        return None if tx is None else tx.as_json(self.clock(), self.step_s)

    # ---- submission -----------------------------------------------------------------------------
    def submit(self, body: dict[str, Any]) -> RelayerTx:
        kind = str(body.get("type", ""))
        owner = _address(body.get("from"), "from").lower()
        metadata = str(body.get("metadata") or "")
        if kind == "WALLET-CREATE":
            return self._create(owner, str(body.get("to", "")), metadata)
        handlers = {"WALLET": self._wallet_calls, "PROXY": self._proxy_calls, "SAFE": self._safe_calls}
        if kind not in handlers:
            raise RelayerError(f"unsupported transaction type {kind!r}")
        wallet, calls = handlers[kind](owner, body)
        self.wallets.use_nonce(wallet)
        tx = self._new(kind, owner, wallet, metadata)
        try:
            tx.calls = self.contracts.batch(wallet, calls)
        except CallReverted as exc:
            tx.error = f"execution reverted: {exc}"
        tx.stalled = not tx.error and self.stall()
        return tx

    def _new(self, kind: str, owner: str, wallet: str, metadata: str) -> RelayerTx:
        tx = RelayerTx(str(uuid.uuid4()), kind, owner, wallet, metadata, self.clock())
        self.txs[tx.id] = tx
        return tx

    def _create(self, owner: str, to: str, metadata: str) -> RelayerTx:
        if to.lower() != self.env.derivation["deposit_wallet_factory"].lower():
            raise RelayerError(f"WALLET-CREATE goes to the deposit wallet factory, not {to}")
        try:
            wallet = self.wallets.deploy(owner, "deposit")
        except WalletError as exc:
            raise RelayerError(str(exc)) from exc
        return self._new("WALLET-CREATE", owner, wallet.address, metadata)

    def _deployed_wallet(self, owner: str, address: object, kind: str) -> str:
        wallet = self.wallets.deployed(_address(address, "wallet"), kind)  # type: ignore[arg-type]
        if wallet is None or wallet.owner != owner:
            raise RelayerError(f"{kind} wallet {address} is not deployed for {owner}")
        return wallet.address

    def _check_nonce(self, wallet: str, nonce: object) -> int:
        want = self.wallets.nonce(wallet)
        if str(nonce) != str(want):
            raise RelayerError(f"batch nonce {nonce} does not match on-chain nonce {want}")
        return want

    def _wallet_calls(self, owner: str, body: dict[str, Any]) -> tuple[str, list[tuple[str, bytes]]]:
        if str(body.get("to", "")).lower() != self.env.derivation["deposit_wallet_factory"].lower():
            raise RelayerError("a WALLET batch goes to the deposit wallet factory")
        params = body.get("depositWalletParams") or {}
        wallet = self._deployed_wallet(owner, params.get("depositWallet"), "deposit")
        nonce = self._check_nonce(wallet, body.get("nonce"))
        try:
            deadline = int(params["deadline"])
            calls = [(_address(c["target"], "target"), int(c["value"]), _bytes(c["data"])) for c in params["calls"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RelayerError(f"bad depositWalletParams: {exc}") from exc
        if deadline < self.clock():
            raise RelayerError(f"batch deadline {deadline} has passed")
        typed = {"types": {"EIP712Domain": _DOMAIN, "Batch": _BATCH, "Call": _CALL}, "primaryType": "Batch",
                 "domain": {"name": "DepositWallet", "version": "1", "chainId": self.env.chain_id,
                            "verifyingContract": to_checksum_address(wallet)},
                 "message": {"wallet": to_checksum_address(wallet), "nonce": nonce, "deadline": deadline,
                             "calls": [{"target": t, "value": v, "data": d} for t, v, d in calls]}}
        if _recover(encode_typed_data(full_message=typed), body.get("signature")) != owner:
            raise RelayerError("invalid signature: the batch is not signed by the wallet's owner")
        return wallet, [(t, d) for t, _v, d in calls]

    def _proxy_calls(self, owner: str, body: dict[str, Any]) -> tuple[str, list[tuple[str, bytes]]]:
        factory = self.env.derivation["proxy_factory"]
        if str(body.get("to", "")).lower() != factory.lower():
            raise RelayerError("a PROXY transaction goes to the proxy factory")
        wallet = self._deployed_wallet(owner, body.get("proxyWallet"), "proxy")
        nonce = self._check_nonce(wallet, body.get("nonce"))
        sp = body.get("signatureParams") or {}
        data = _bytes(body.get("data"))
        if data[:4] != _PROXY_SELECTOR:
            raise RelayerError("a PROXY transaction calls proxy((uint8,address,uint256,bytes)[])")
        if str(sp.get("relayHub", "")).lower() != self.env.address("relay_hub").lower():
            raise RelayerError("signatureParams.relayHub is not the relay hub")
        try:
            (inner,) = decode(["(uint8,address,uint256,bytes)[]"], data[4:])
            fields = (int(sp.get("relayerFee", 0)), int(sp.get("gasPrice", 0)), int(sp["gasLimit"]), nonce)
            relay = _bytes(sp["relay"])
        except Exception as exc:  # eth_abi, KeyError, ValueError
            raise RelayerError(f"bad PROXY transaction: {exc}") from exc
        digest = keccak(b"rlx:" + _bytes(owner) + _bytes(factory) + data
                        + b"".join(f.to_bytes(32, "big") for f in fields) + _bytes(self.env.address("relay_hub"))
                        + relay)
        if _recover(encode_defunct(primitive=digest), body.get("signature")) != owner:
            raise RelayerError("invalid signature: the proxy call is not signed by the wallet's owner")
        return wallet, [(str(to), bytes(d)) for _op, to, _value, d in inner]

    def _safe_calls(self, owner: str, body: dict[str, Any]) -> tuple[str, list[tuple[str, bytes]]]:
        wallet = self._deployed_wallet(owner, body.get("proxyWallet"), "safe")
        nonce = self._check_nonce(wallet, body.get("nonce"))
        sp = body.get("signatureParams") or {}
        to, data = _address(body.get("to"), "to"), _bytes(body.get("data"))
        try:
            operation, value = int(sp.get("operation", 0)), int(body.get("value") or 0)
        except ValueError as exc:
            raise RelayerError(f"bad SAFE transaction: {exc}") from exc
        typed = {"types": {"EIP712Domain": [_DOMAIN[2], _DOMAIN[3]], "SafeTx": _SAFE_TX}, "primaryType": "SafeTx",
                 "domain": {"chainId": self.env.chain_id, "verifyingContract": to_checksum_address(wallet)},
                 "message": {"to": to, "value": value, "data": data, "operation": operation, "safeTxGas": 0,
                             "baseGas": 0, "gasPrice": 0, "gasToken": _ZERO, "refundReceiver": _ZERO,
                             "nonce": nonce}}
        encoded = encode_typed_data(full_message=typed)
        digest = keccak(b"\x19" + encoded.version + encoded.header + encoded.body)
        sig = bytearray(_bytes(body.get("signature")))
        if len(sig) != 65 or sig[64] < 31:
            raise RelayerError("invalid signature: a Safe signature is packed with v + 4")
        sig[64] -= 4
        if _recover(encode_defunct(primitive=digest), "0x" + bytes(sig).hex()) != owner:
            raise RelayerError("invalid signature: the Safe transaction is not signed by the wallet's owner")
        if operation == 0:
            return wallet, [(to, data)]
        if to.lower() != self.env.address("safe_multisend").lower() or data[:4] != _MULTISEND_SELECTOR:
            raise RelayerError("a Safe DELEGATECALL goes to the multisend contract's multiSend(bytes)")
        return wallet, _multisend(data)


def _multisend(data: bytes) -> list[tuple[str, bytes]]:
    """The calls packed in ``multiSend(bytes)``: ``op(1) ‖ to(20) ‖ value(32) ‖ len(32) ‖ data``."""
    (packed,) = decode(["bytes"], data[4:])
    calls, i = [], 0
    while i < len(packed):
        to, size = packed[i + 1:i + 21], int.from_bytes(packed[i + 53:i + 85], "big")
        calls.append(("0x" + to.hex(), bytes(packed[i + 85:i + 85 + size])))
        i += 85 + size
    return calls
