"""The sim's Polygon contracts (pure): what a call to each does to the calling wallet's account.

One place for every call the venue's contracts take, whoever brings it: a raw transaction over
JSON-RPC (:mod:`rpc`, the EOA is the actor) or a relayer batch (:mod:`relayer`, the smart wallet
is the actor). Addresses come from the sim's environment (``SimEnvironment``), never a literal:

| contract (environment field) | takes |
|---|---|
| ``collateral_token`` (pUSD, ERC-20) | ``approve``; reads ``allowance``, ``balanceOf`` |
| ``conditional_tokens`` (v1 ERC-1155) | ``setApprovalForAll``; reads ``isApprovedForAll``, ``balanceOf(Batch)`` |
| ``position_manager`` (v2 ERC-1155) | the same, for v2 position ids |
| ``neg_risk_adapter`` | ``splitPosition``/``mergePositions(bytes32, …)``, ``convertPositions``, ``redeemPositions(bytes32, uint256[])``; reads ``balanceOf(Batch)`` of neg-risk tokens |
| ``collateral_adapter`` / ``neg_risk_collateral_adapter`` | the ConditionalTokens-shaped split/merge/redeem of binary / neg-risk v1 markets |
| ``protocol_v2_router`` | ``split(bytes31, uint256)``, ``merge(bytes31, uint256)``, ``redeem(bytes31, outcomeIndex, amount)`` of v2 markets |

A call the contract would refuse raises :class:`CallReverted` with a revert reason, before anything
moves. Approvals are recorded and read back, not enforced (docs/sim-exchange.md). :meth:`batch`
runs several calls all-or-nothing, as one transaction of a smart wallet does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from services.sim_exchange.ctf import Ctf, CtfError
from services.sim_exchange.environment import SimEnvironment
from services.sim_exchange.market import MarketSim, SimMarket
from services.sim_exchange.negrisk import SimEvent
from shared.venue.ctf_calls import (
    BINARY_PARTITION,
    UNIT,
    ZERO32,
    BadCall,
    CtfCall,
    decode_approval,
    decode_call,
)

MAX_UINT256 = 2**256 - 1
_TOKEN_READS = {  # selector -> (name, argument types): the ERC-20/1155 views besides the approval pair
    keccak(text="balanceOf(address)")[:4]: ("erc20_balance_of", ("address",)),
    keccak(text="balanceOf(address,uint256)")[:4]: ("erc1155_balance_of", ("address", "uint256")),
    keccak(text="balanceOfBatch(address[],uint256[])")[:4]: ("erc1155_balance_of_batch", ("address[]", "uint256[]")),
}
_ROUTER = {  # selector -> (name, argument types): Protocol V2's Router (docs/venue.md V4)
    keccak(text="split(bytes31,uint256)")[:4]: ("v2_split", ("bytes31", "uint256")),
    keccak(text="merge(bytes31,uint256)")[:4]: ("v2_merge", ("bytes31", "uint256")),
    keccak(text="redeem(bytes31,uint256,uint256)")[:4]: ("v2_redeem", ("bytes31", "uint256", "uint256")),
}
_ERC1155 = ("conditional_tokens", "position_manager")


def _decode_router(data: bytes) -> tuple[str, tuple[Any, ...]]:
    name, types = _ROUTER.get(bytes(data[:4]), ("", ()))
    if not name:
        raise BadCall(f"the Router has no function 0x{bytes(data[:4]).hex()}")
    try:
        return name, tuple(decode(list(types), bytes(data[4:])))
    except Exception as exc:  # eth_abi raises several decoding error types
        raise BadCall(f"{name}: calldata does not decode ({exc})") from exc


class CallReverted(Exception):
    """The contract refuses the call; ``str(exc)`` is the revert reason, ``call`` the call's name
    when it decoded."""

    def __init__(self, reason: str, call: str = "") -> None:
        super().__init__(reason)
        self.call = call


@dataclass(frozen=True)
class Done:
    """One executed call: its name and decoded arguments (for logs and the transaction list)."""

    name: str
    args: dict[str, Any]


@dataclass
class Contracts:
    env: SimEnvironment
    ctf: Ctf
    sim: MarketSim
    event_of: Callable[[str], SimEvent | None]
    # (token contract, owner, spender) -> allowance in base units (ERC-20) or 1/0 (ERC-1155 approval for all)
    approvals: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.role = {addr.lower(): name for name, addr in self.env.contracts.items()}
        self.collateral = self.env.address("collateral_token").lower()

    # ---- transactions ---------------------------------------------------------------------------
    def execute(self, actor: str, to: str, data: bytes, dry: bool = False) -> Done:
        """Apply one call of ``actor`` (``dry``: only check it would not revert on its arguments)."""
        role = self.role.get(to.lower(), "")
        name = ""
        try:
            if role == "collateral_token" or role in _ERC1155:
                name, args = decode_approval(data)
                return self._approval(role, to.lower(), actor.lower(), name, args, dry)
            if role == "protocol_v2_router":
                name, values = _decode_router(data)
                return self._router(actor.lower(), name, values, dry)
            call = decode_call(data)
            name = call.name
            done = Done(call.name, {k: v for k, v in asdict(call).items() if k not in ("name", "parent")})
            self._apply(actor.lower(), role, to.lower(), call, dry)
            return done
        except (BadCall, CtfError) as exc:
            raise CallReverted(str(exc), name) from exc

    def batch(self, actor: str, calls: list[tuple[str, bytes]]) -> list[Done]:
        """Every call of one transaction, all-or-nothing: a revert undoes the calls before it."""
        acct = self.ctf.matcher.account(actor)
        saved = (acct.cash, dict(acct.positions), copy.copy(self.approvals), len(self.ctf.ops))
        try:
            return [self.execute(actor, to, data) for to, data in calls]
        except CallReverted:
            acct.cash, acct.positions, self.approvals = saved[0], saved[1], saved[2]
            del self.ctf.ops[saved[3]:]
            raise

    def _approval(self, role: str, token: str, actor: str, name: str, args: tuple[Any, ...], dry: bool) -> Done:
        if name == "erc20_approve" and role == "collateral_token":
            spender, amount = str(args[0]).lower(), int(args[1])
        elif name == "erc1155_set_approval_for_all" and role in _ERC1155:
            spender, amount = str(args[0]).lower(), int(bool(args[1]))
        else:
            raise BadCall(f"{name} is not a transaction on the {role}")
        if not dry:
            self.approvals[(token, actor, spender)] = amount
        return Done(name, {"spender": spender, "amount": amount})

    def _router(self, actor: str, name: str, values: tuple[Any, ...], dry: bool) -> Done:
        market = self.sim.condition("0x" + bytes(values[0]).hex())
        if market is None or market.version != "v2":
            raise CtfError(f"condition 0x{bytes(values[0]).hex()} is not a v2 condition")
        amount = values[-1] / UNIT
        if name == "v2_redeem":
            if values[1] not in (0, 1):
                raise CtfError("outcome index must be 0 or 1")
            if market.condition_id not in self.ctf.winners:
                raise CtfError("condition not resolved")
            if not dry:
                self.ctf.redeem(actor, market, (amount, 0.0) if values[1] == 0 else (0.0, amount))
            return Done(name, {"condition_id": market.condition_id, "outcome_index": values[1], "amount": amount})
        if not dry:
            (self.ctf.split if name == "v2_split" else self.ctf.merge)(actor, market, amount)
        return Done(name, {"condition_id": market.condition_id, "amount": amount})

    def _route(self, role: str, to: str, call: CtfCall) -> SimMarket | SimEvent:
        """The market (or neg-risk event) ``call`` is for, after checking ``to`` takes it."""
        if role not in ("collateral_adapter", "neg_risk_collateral_adapter", "neg_risk_adapter"):
            raise CtfError(f"no contract at {to}")
        if call.name == "nr_convert":
            if role != "neg_risk_adapter":
                raise CtfError(f"{role} has no convertPositions")
            event = self.event_of(call.condition_id)
            if event is None:
                raise CtfError(f"unknown neg-risk market {call.condition_id}")
            return event
        market = self.sim.condition(call.condition_id)
        if market is None or market.version != "v1":
            raise CtfError(f"condition {call.condition_id} not prepared")
        if call.name.endswith("redeem") and market.condition_id not in self.ctf.winners:
            raise CtfError("result for condition not received yet")  # ConditionalTokens' own revert text
        if call.name == "nr_redeem" and len(call.amounts) != 2:
            raise CtfError("amounts must be [YES, NO]")
        if call.name.startswith("nr_"):
            if role != "neg_risk_adapter" or not market.neg_risk:
                raise CtfError(f"{role} cannot {call.name} a {'neg-risk' if market.neg_risk else 'binary'} market")
            return market
        if role == "neg_risk_adapter":
            raise CtfError("the NegRiskAdapter takes the (bytes32, ...) shapes, not the ConditionalTokens one")
        if (role == "neg_risk_collateral_adapter") != market.neg_risk:
            raise CtfError(f"{role} cannot {call.name} a {'neg-risk' if market.neg_risk else 'binary'} market")
        if call.collateral.lower() != self.collateral or call.parent != ZERO32 or call.partition != BINARY_PARTITION:
            raise CtfError("unexpected collateral, parent collection or partition")
        return market

    def _apply(self, actor: str, role: str, to: str, call: CtfCall, dry: bool) -> None:
        target = self._route(role, to, call)
        if dry:
            return
        if isinstance(target, SimEvent):
            self.ctf.convert(actor, target, list(call.outcome_indexes), call.amount)
        elif call.name == "ctf_redeem":
            self.ctf.redeem(actor, target)
        elif call.name == "nr_redeem":
            self.ctf.redeem(actor, target, (call.amounts[0], call.amounts[1]))
        else:
            (self.ctf.split if call.name.endswith("split") else self.ctf.merge)(actor, target, call.amount)

    # ---- reads (eth_call) -----------------------------------------------------------------------
    def read(self, to: str, data: bytes) -> bytes:
        """The ABI-encoded answer of a view call; :class:`CallReverted` for anything else."""
        token, role = to.lower(), self.role.get(to.lower(), "")
        name, types = _TOKEN_READS.get(bytes(data[:4]), ("", ()))
        try:
            if not name:
                name, args = decode_approval(data)
            else:
                args = tuple(decode(list(types), bytes(data[4:])))
        except Exception as exc:  # BadCall, or calldata that does not decode
            raise CallReverted(f"execution reverted: {exc}") from exc
        if name == "erc20_allowance" and role == "collateral_token":
            return encode(["uint256"], [self.approvals.get((token, str(args[0]).lower(), str(args[1]).lower()), 0)])
        if name == "erc20_balance_of" and role == "collateral_token":
            return encode(["uint256"], [self._units(self.ctf.matcher.account(str(args[0])).cash)])
        if name == "erc1155_is_approved_for_all" and role in _ERC1155:
            approved = self.approvals.get((token, str(args[0]).lower(), str(args[1]).lower()), 0)
            return encode(["bool"], [bool(approved)])
        if name == "erc1155_balance_of" and role in (*_ERC1155, "neg_risk_adapter"):
            return encode(["uint256"], [self.balance(role, str(args[0]), str(args[1]))])
        if name == "erc1155_balance_of_batch" and role in (*_ERC1155, "neg_risk_adapter"):
            owners, ids = args
            if len(owners) != len(ids):
                raise CallReverted("execution reverted: ERC1155: accounts and ids length mismatch")
            return encode(["uint256[]"], [[self.balance(role, str(o), str(i)) for o, i in zip(owners, ids, strict=True)]])
        raise CallReverted(f"execution reverted: no {name} at {to}")

    def balance(self, role: str, owner: str, token_id: str) -> int:
        """ERC-1155 balance of ``owner``: each ledger holds only its own system's outcomes."""
        market = self.sim.market_of.get(str(int(token_id)))
        if market is None:
            return 0
        holds = {"conditional_tokens": market.version == "v1", "position_manager": market.version == "v2",
                 "neg_risk_adapter": market.version == "v1" and market.neg_risk}[role]
        return self._units(self.ctf.matcher.account(owner).positions.get(str(int(token_id)), 0.0)) if holds else 0

    @staticmethod
    def _units(amount: float) -> int:
        return max(int(round(amount * UNIT)), 0)

    def allowance(self, token_field: str, owner: str, spender: str) -> int:
        return self.approvals.get((self.env.address(token_field).lower(), owner.lower(), spender.lower()), 0)
