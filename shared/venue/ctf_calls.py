"""Calldata of the conditional-token position calls (Polygon): encode what the official SDK has
no call for (the NegRiskAdapter's ``convertPositions``, sent through its ``execute_transaction``,
shared/venue/positions.py) and the approval reads (shared/venue/approvals.py); decode for the sim's
contracts (its JSON-RPC node and relayer). One table, so the two sides cannot disagree about a
selector. Split, merge and redeem themselves are the SDK's own calls.

* ConditionalTokens shape (also what the V2 collateral adapters take, with pUSD as collateral):
  ``splitPosition(address collateralToken, bytes32 parentCollectionId, bytes32 conditionId,
  uint256[] partition, uint256 amount)`` and ``mergePositions`` with the same arguments;
  Polymarket: parent = 32 zero bytes, partition = [1, 2] (YES = 1, NO = 2).
  ``redeemPositions(address collateralToken, bytes32 parentCollectionId, bytes32 conditionId,
  uint256[] indexSets)`` after resolution: burns the caller's whole balance of those positions
  and pays the winning ones (no amount argument).
* NegRiskAdapter: ``splitPosition(bytes32 conditionId, uint256 amount)``,
  ``mergePositions(bytes32 conditionId, uint256 amount)``,
  ``convertPositions(bytes32 marketId, uint256 indexSet, uint256 amount)`` (``indexSet``: bit i
  set = the NO of outcome i is converted), ``redeemPositions(bytes32 conditionId, uint256[]
  amounts)`` (``amounts`` = [YES, NO] to redeem; more than the caller holds reverts).

Amounts are collateral base units: 6 decimals (pUSD and USDC.e), and shares use the same scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

UNIT = 1_000_000  # 6 decimals
ZERO32 = b"\x00" * 32
BINARY_PARTITION = (1, 2)

SIGNATURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ctf_split": ("splitPosition", ("address", "bytes32", "bytes32", "uint256[]", "uint256")),
    "ctf_merge": ("mergePositions", ("address", "bytes32", "bytes32", "uint256[]", "uint256")),
    "nr_split": ("splitPosition", ("bytes32", "uint256")),
    "nr_merge": ("mergePositions", ("bytes32", "uint256")),
    "nr_convert": ("convertPositions", ("bytes32", "uint256", "uint256")),
    "ctf_redeem": ("redeemPositions", ("address", "bytes32", "bytes32", "uint256[]")),
    "nr_redeem": ("redeemPositions", ("bytes32", "uint256[]")),
}


def selector(name: str) -> bytes:
    fn, types = SIGNATURES[name]
    return keccak(text=f"{fn}({','.join(types)})")[:4]


BY_SELECTOR: dict[bytes, str] = {selector(n): n for n in SIGNATURES}


class BadCall(ValueError):
    """Calldata that is none of the calls above, or does not decode."""


@dataclass(frozen=True)
class CtfCall:
    name: str  # a key of SIGNATURES
    condition_id: str  # 0x.. (the market id for nr_convert)
    amount: float  # sets (base units / UNIT); redeem: 0 (ctf_redeem has none, nr_redeem has ``amounts``)
    collateral: str = ""  # ctf_* only
    partition: tuple[int, ...] = ()  # ctf_* only
    outcome_indexes: tuple[int, ...] = ()  # nr_convert only
    amounts: tuple[float, ...] = ()  # nr_redeem only: [YES, NO] shares
    parent: bytes = ZERO32


def to_units(amount: float) -> int:
    units = round(amount * UNIT)
    if units <= 0:
        raise BadCall(f"amount {amount!r} is not positive at 6 decimals")
    return units


def _units_or_zero(amount: float) -> int:
    units = round(amount * UNIT)
    if units < 0:
        raise BadCall(f"amount {amount!r} is negative")
    return units


def _b32(hex_id: str) -> bytes:
    raw = bytes.fromhex(hex_id.removeprefix("0x"))
    if len(raw) != 32:
        raise BadCall(f"{hex_id!r} is not 32 bytes")
    return raw


def index_set(outcome_indexes: list[int] | tuple[int, ...]) -> int:
    return sum(1 << i for i in set(outcome_indexes))


def encode_call(call: CtfCall) -> bytes:
    args: list[Any]
    if call.name in ("ctf_split", "ctf_merge"):
        args = [call.collateral, call.parent, _b32(call.condition_id), list(call.partition or BINARY_PARTITION),
                to_units(call.amount)]
    elif call.name in ("nr_split", "nr_merge"):
        args = [_b32(call.condition_id), to_units(call.amount)]
    elif call.name == "nr_convert":
        args = [_b32(call.condition_id), index_set(call.outcome_indexes), to_units(call.amount)]
    elif call.name == "ctf_redeem":
        args = [call.collateral, call.parent, _b32(call.condition_id), list(call.partition or BINARY_PARTITION)]
    elif call.name == "nr_redeem":
        if len(call.amounts) != 2:
            raise BadCall("nr_redeem needs amounts [YES, NO]")
        args = [_b32(call.condition_id), [_units_or_zero(a) for a in call.amounts]]
    else:
        raise BadCall(f"unknown call {call.name!r}")
    return selector(call.name) + encode(list(SIGNATURES[call.name][1]), args)


def decode_call(data: bytes) -> CtfCall:
    name = BY_SELECTOR.get(bytes(data[:4]))
    if name is None:
        raise BadCall(f"unknown selector 0x{bytes(data[:4]).hex()}")
    try:
        values = decode(list(SIGNATURES[name][1]), bytes(data[4:]))
    except Exception as exc:  # eth_abi raises several decoding error types
        raise BadCall(f"{name}: calldata does not decode ({exc})") from exc
    if name in ("ctf_split", "ctf_merge"):
        collateral, parent, cid, partition, units = values
        return CtfCall(name, "0x" + cid.hex(), units / UNIT, str(collateral), tuple(partition), parent=parent)
    if name in ("nr_split", "nr_merge"):
        cid, units = values
        return CtfCall(name, "0x" + cid.hex(), units / UNIT)
    if name == "ctf_redeem":
        collateral, parent, cid, index_sets = values
        return CtfCall(name, "0x" + cid.hex(), 0.0, str(collateral), tuple(index_sets), parent=parent)
    if name == "nr_redeem":
        cid, amounts = values
        return CtfCall(name, "0x" + cid.hex(), 0.0, amounts=tuple(a / UNIT for a in amounts))
    market, mask, units = values
    return CtfCall(name, "0x" + market.hex(), units / UNIT,
                   outcome_indexes=tuple(i for i in range(256) if mask >> i & 1))


# ---- approvals (ERC-20 pUSD, ERC-1155 ConditionalTokens) ---------------------------------------------
# Kept apart from SIGNATURES: they are not position calls and carry addresses, not condition ids.
APPROVALS: dict[str, tuple[str, tuple[str, ...]]] = {
    "erc20_approve": ("approve", ("address", "uint256")),
    "erc20_allowance": ("allowance", ("address", "address")),
    "erc1155_set_approval_for_all": ("setApprovalForAll", ("address", "bool")),
    "erc1155_is_approved_for_all": ("isApprovedForAll", ("address", "address")),
}
MAX_UINT256 = 2**256 - 1


def approval_selector(name: str) -> bytes:
    fn, types = APPROVALS[name]
    return keccak(text=f"{fn}({','.join(types)})")[:4]


APPROVAL_BY_SELECTOR: dict[bytes, str] = {approval_selector(n): n for n in APPROVALS}


def encode_approval(name: str, *args: Any) -> bytes:
    return approval_selector(name) + encode(list(APPROVALS[name][1]), list(args))


def decode_approval(data: bytes) -> tuple[str, tuple[Any, ...]]:
    """(name, arguments) of an approval call or read; :class:`BadCall` for anything else."""
    name = APPROVAL_BY_SELECTOR.get(bytes(data[:4]))
    if name is None:
        raise BadCall(f"unknown selector 0x{bytes(data[:4]).hex()}")
    try:
        return name, tuple(decode(list(APPROVALS[name][1]), bytes(data[4:])))
    except Exception as exc:  # eth_abi raises several decoding error types
        raise BadCall(f"{name}: calldata does not decode ({exc})") from exc


@dataclass(frozen=True, slots=True)
class ChainAddresses:
    """The v1 (CTF) contracts the position calls go to, from the venue environment."""

    collateral: str  # pUSD
    conditional_tokens: str  # the ERC-1155 holding v1 positions
    ctf_collateral_adapter: str  # binary split/merge/redeem
    neg_risk_collateral_adapter: str  # neg-risk split/merge
    neg_risk_adapter: str  # convert, neg-risk redeem

    @classmethod
    def from_environment(cls, address: Callable[[str], str]) -> ChainAddresses:
        """``address``: an environment's address lookup (``VenueEnvironment.address``)."""
        return cls(address("collateral_token"), address("conditional_tokens"), address("collateral_adapter"),
                   address("neg_risk_collateral_adapter"), address("neg_risk_adapter"))
