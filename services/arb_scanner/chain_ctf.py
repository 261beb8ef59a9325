"""Merge, split and convert on Polygon: signed EIP-1559 transactions over Ethereum JSON-RPC.

No web3.py: the calls are five fixed functions (``shared.venue.ctf_calls`` encodes them with
eth-abi), the transactions are signed by eth-account (both already installed with
py-clob-client-v2) and the JSON-RPC is a handful of methods over httpx.

Routing (docs/arbitrage.md "Live merge and split"):

* binary market: ``splitPosition``/``mergePositions`` (ConditionalTokens shape, pUSD as
  collateral) on the CTF collateral adapter;
* neg-risk market: the same on the neg-risk collateral adapter, or (``neg_risk_split_via:
  neg_risk_adapter``) the NegRiskAdapter's own ``splitPosition(bytes32,uint256)``;
* convert: NegRiskAdapter ``convertPositions(marketId, indexSet, amount)``;
* redeem: ``redeemPositions(pUSD, 0x0, conditionId, [1, 2])`` on the CTF collateral adapter
  (binary), NegRiskAdapter ``redeemPositions(conditionId, [yes, no])`` (neg-risk).

One transaction, start to end: chain id checked once; nonce from ``eth_getTransactionCount(..,
"pending")``; fees from ``eth_gasPrice`` and ``eth_maxPriorityFeePerGas`` under the caps;
``eth_estimateGas`` (an error there means the call would revert: refused, nothing sent); sign;
``eth_sendRawTransaction``; poll ``eth_getTransactionReceipt`` for ``receipt_timeout_sec``.

Outcomes: a receipt with status 1 is done; status 0 (reverted) or a send the node rejects is
:class:`CtfRejected` (nothing happened); anything else (transport error, no receipt in time) is
:class:`CtfHalt`. The only resend is of the *same signed bytes* (same nonce, same hash): it
can be mined at most once, so a resend never doubles an operation.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
from eth_account import Account
from eth_utils.crypto import keccak
from loguru import logger

from services.arb_scanner.ctf import CtfHalt, CtfRejected
from shared.config import ArbChainSection
from shared.venue.ctf_calls import MAX_UINT256, ChainAddresses, CtfCall, encode_approval, encode_call
from shared.venue.environment import VenueEnvironment

GWEI = 10**9


class RpcError(RuntimeError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class EthRpc:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.http = httpx.AsyncClient(timeout=timeout)
        self.url = url
        self.ids = itertools.count(1)

    async def call(self, method: str, params: list[Any]) -> Any:
        """The result; :class:`RpcError` for an error object; httpx errors for transport failures."""
        resp = await self.http.post(self.url, json={"jsonrpc": "2.0", "id": next(self.ids), "method": method,
                                                    "params": params})
        if resp.status_code != 200:  # not raise_for_status: its message carries the URL, often with a key
            raise httpx.HTTPError(f"{method}: HTTP {resp.status_code} from the RPC endpoint")
        body = resp.json()
        if not isinstance(body, dict):
            raise RpcError(-32603, f"{method}: answer is not an object")
        if body.get("error"):
            err = body["error"]
            raise RpcError(int(err.get("code", -32603)), str(err.get("message", "")))
        return body.get("result")

    async def aclose(self) -> None:
        await self.http.aclose()


def _int(value: Any) -> int:
    return int(str(value), 16)


class ChainCtf:
    def __init__(self, rpc: EthRpc, private_key: str, env: VenueEnvironment, cfg: ArbChainSection) -> None:
        self.rpc = rpc
        self.key = private_key
        self.address = Account.from_key(private_key).address
        self.chain_id = env.chain_id
        self.cfg = cfg
        self.addr = ChainAddresses.from_environment(env.address)
        self.chain_checked = False

    # ---- the operations -------------------------------------------------------------------------
    async def split(self, condition_id: str, amount: float, neg_risk: bool = False) -> str:
        return await self._position("split", condition_id, amount, neg_risk)

    async def merge(self, condition_id: str, amount: float, neg_risk: bool = False) -> str:
        return await self._position("merge", condition_id, amount, neg_risk)

    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str:
        call = CtfCall("nr_convert", neg_risk_market_id, amount, outcome_indexes=tuple(outcome_indexes))
        return await self.send(self.addr.neg_risk_adapter, encode_call(call), f"convert {amount:g}")

    async def redeem(self, condition_id: str, amounts: tuple[float, float], neg_risk: bool = False) -> str:
        if neg_risk:
            to, call = self.addr.neg_risk_adapter, CtfCall("nr_redeem", condition_id, 0.0, amounts=amounts)
        else:
            to = self.addr.ctf_collateral_adapter
            call = CtfCall("ctf_redeem", condition_id, 0.0, self.addr.collateral, (1, 2))
        return await self.send(to, encode_call(call), f"redeem {condition_id[:12]}")

    # ---- approvals ------------------------------------------------------------------------------
    def approvals_needed(self) -> list[tuple[str, str, str]]:
        """(token contract, read/approve kind, spender): what the position calls pull from the wallet.
        The collateral adapters take pUSD (split) and the positions (merge, redeem); the
        NegRiskAdapter takes the positions (convert, redeem) and, when neg-risk splits go through
        it, pUSD too."""
        c = self.addr
        pusd = [c.ctf_collateral_adapter, c.neg_risk_collateral_adapter]
        if self.cfg.neg_risk_split_via == "neg_risk_adapter":
            pusd.append(c.neg_risk_adapter)
        ctf = [c.ctf_collateral_adapter, c.neg_risk_collateral_adapter, c.neg_risk_adapter]
        return [(c.collateral, "erc20", a) for a in pusd] + [(c.conditional_tokens, "erc1155", a) for a in ctf]

    async def ensure_approvals(self) -> list[str]:
        """Read each allowance / isApprovedForAll (``eth_call``) and send only what is missing, one
        transaction each; what was sent, as text. Raises CtfRejected/CtfHalt like any call."""
        sent = []
        for token, kind, spender in self.approvals_needed():
            if kind == "erc20":
                read = encode_approval("erc20_allowance", self.address, spender)
            else:
                read = encode_approval("erc1155_is_approved_for_all", self.address, spender)
            value = _int(await self._before_send("eth_call", [{"to": token, "data": "0x" + read.hex()}, "latest"],
                                                 f"approval check of {spender[:10]}") or "0x0")
            # an allowance below 2^255 is topped up: unlimited is what the adapters' users set, once
            if (kind == "erc20" and value >= 2**255) or (kind == "erc1155" and value == 1):
                continue
            if kind == "erc20":
                data, what = encode_approval("erc20_approve", spender, MAX_UINT256), f"pUSD approve {spender}"
            else:
                data, what = encode_approval("erc1155_set_approval_for_all", spender, True), f"CTF setApprovalForAll {spender}"
            sent.append(f"{what}: {await self.send(token, data, what)}")
        return sent

    async def _position(self, op: str, condition_id: str, amount: float, neg_risk: bool) -> str:
        if neg_risk and self.cfg.neg_risk_split_via == "neg_risk_adapter":
            to, call = self.addr.neg_risk_adapter, CtfCall(f"nr_{op}", condition_id, amount)
        else:
            to = self.addr.neg_risk_collateral_adapter if neg_risk else self.addr.ctf_collateral_adapter
            call = CtfCall(f"ctf_{op}", condition_id, amount, self.addr.collateral, (1, 2))
        return await self.send(to, encode_call(call), f"{op} {amount:g} of {condition_id[:12]}")

    # ---- one transaction ------------------------------------------------------------------------
    async def _before_send(self, method: str, params: list[Any], what: str) -> Any:
        """A read before anything is signed: any failure means nothing was sent."""
        try:
            return await self.rpc.call(method, params)
        except (RpcError, httpx.HTTPError, ValueError) as exc:
            raise CtfRejected(f"{what} refused: {method} failed ({exc}); nothing sent") from exc

    async def send(self, to: str, data: bytes, what: str) -> str:
        if not self.chain_checked:
            chain = _int(await self._before_send("eth_chainId", [], what))
            if chain != self.chain_id:
                raise CtfRejected(f"{what} refused: the RPC serves chain {chain}, not {self.chain_id}")
            self.chain_checked = True
        nonce = _int(await self._before_send("eth_getTransactionCount", [self.address, "pending"], what))
        gas_price = _int(await self._before_send("eth_gasPrice", [], what))
        tip = max(_int(await self._before_send("eth_maxPriorityFeePerGas", [], what)),
                  int(self.cfg.min_priority_fee_gwei * GWEI))
        max_fee = min(2 * gas_price + tip, int(self.cfg.max_fee_gwei_cap * GWEI))
        if tip > max_fee:
            raise CtfRejected(f"{what} refused: priority fee {tip / GWEI:g} gwei above max_fee_gwei_cap")
        call = {"from": self.address, "to": to, "data": "0x" + data.hex()}
        estimate = _int(await self._before_send("eth_estimateGas", [call], what))
        gas = int(estimate * 1.2) + 10_000
        if estimate > self.cfg.gas_limit_cap:
            raise CtfRejected(f"{what} refused: gas estimate {estimate} above gas_limit_cap {self.cfg.gas_limit_cap}")
        gas = min(gas, self.cfg.gas_limit_cap)
        signed = Account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "to": to, "value": 0, "data": data,
            "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}, self.key)
        raw = "0x" + bytes(signed.raw_transaction).hex()
        tx_hash = "0x" + keccak(bytes(signed.raw_transaction)).hex()
        logger.info("chain {}: tx {} nonce {} gas {} max fee {:g} gwei", what, tx_hash, nonce, gas, max_fee / GWEI)
        await self._broadcast(raw, tx_hash, what, first=True)
        return await self._wait(raw, tx_hash, what)

    async def _broadcast(self, raw: str, tx_hash: str, what: str, first: bool) -> None:
        """Send the signed bytes. A rejection of the first send means nothing happened; a
        transport error leaves the outcome open (the receipt decides)."""
        try:
            await self.rpc.call("eth_sendRawTransaction", [raw])
        except RpcError as exc:
            if "already known" in exc.message.lower():
                return
            if first:
                raise CtfRejected(f"{what} refused by the node ({exc.message}); tx {tx_hash} not sent") from exc
            logger.warning("chain {}: resend of {} answered {}", what, tx_hash, exc.message)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("chain {}: send of {} failed in transport ({}); waiting for a receipt", what, tx_hash, exc)

    async def _wait(self, raw: str, tx_hash: str, what: str) -> str:
        deadline = time.monotonic() + self.cfg.receipt_timeout_sec
        resent = False
        while True:
            try:
                receipt = await self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            except (RpcError, httpx.HTTPError, ValueError) as exc:
                logger.warning("chain {}: receipt of {} unreadable ({})", what, tx_hash, exc)
                receipt = None
            if isinstance(receipt, dict):
                if _int(receipt.get("status", "0x0")) == 1:
                    return tx_hash
                raise CtfRejected(f"{what}: tx {tx_hash} reverted (status 0)")
            now = time.monotonic()
            if now >= deadline:
                raise CtfHalt(f"{what}: outcome unknown, tx {tx_hash} has no receipt after "
                                 f"{self.cfg.receipt_timeout_sec:g} s (same nonce: a resend cannot double it)")
            if not resent and now >= deadline - self.cfg.receipt_timeout_sec / 2:
                resent = True  # half-way without a receipt: the node may have dropped it; same bytes again
                await self._broadcast(raw, tx_hash, what, first=False)
            await asyncio.sleep(min(self.cfg.receipt_poll_sec, max(deadline - now, 0.0)))

    async def aclose(self) -> None:
        await self.rpc.aclose()
