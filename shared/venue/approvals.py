"""The approvals polyfleet's trading needs, read over JSON-RPC and sent through the SDK.

Every contract that pulls from the wallet must be approved once (docs/venue.md V4, C2, W-rules):

* pUSD (ERC-20 ``approve``) for what takes collateral: the CTF exchange and the neg-risk CTF
  exchange (v1 BUY orders), ExchangeV3 (v2 BUY orders), the collateral adapter and the neg-risk
  collateral adapter (v1 split), the Router (v2 split);
* Conditional Tokens (ERC-1155 ``setApprovalForAll``) for what takes v1 positions: both CTF
  exchanges (SELL orders), both collateral adapters (merge, redeem) and the NegRiskAdapter
  (convert);
* PositionManager (ERC-1155) for what takes v2 positions: ExchangeV3 (SELL orders) and the Router
  (merge, redeem).

This is the SDK's ``setup_trading_approvals`` set (``_internal/actions/relayer/approvals.py``)
less what polyfleet never uses (the auto-redeem operator, the V2 modules, the perps deposit) plus
the NegRiskAdapter, which the SDK has no convert for and so does not approve. Addresses come from
the venue environment; none is written here.

The state is read with ``eth_call`` (``allowance``/``isApprovedForAll``) in one JSON-RPC batch:
the chain is the authority, the Data API's indexed ``/v2/approvals`` can lag. What is missing is
sent through the SDK's ``execute_transaction``: one relayer batch for a smart wallet, one
transaction each for an EOA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.venue.chain_reads import eth_calls
from shared.venue.ctf_calls import MAX_UINT256, encode_approval
from shared.venue.environment import VenueEnvironment
from shared.venue.errors import VenueError, VenueSetupError

if TYPE_CHECKING:
    from polymarket import AsyncSecureClient

Standard = Literal["ERC20", "ERC1155"]
UNLIMITED = 2**255  # an allowance at or above this is the "approve max" the setup sends
SETUP_COMMAND = "polyfleet setup-wallet"

# (token field, standard, spender field, what the spender does with it) -- environment field names
REQUIRED: tuple[tuple[str, Standard, str, str], ...] = (
    ("collateral_token", "ERC20", "standard_exchange", "v1 BUY orders"),
    ("collateral_token", "ERC20", "neg_risk_exchange", "v1 neg-risk BUY orders"),
    ("collateral_token", "ERC20", "exchange_v3", "v2 BUY orders"),
    ("collateral_token", "ERC20", "collateral_adapter", "v1 split"),
    ("collateral_token", "ERC20", "neg_risk_collateral_adapter", "v1 neg-risk split"),
    ("collateral_token", "ERC20", "protocol_v2_router", "v2 split"),
    ("conditional_tokens", "ERC1155", "standard_exchange", "v1 SELL orders"),
    ("conditional_tokens", "ERC1155", "neg_risk_exchange", "v1 neg-risk SELL orders"),
    ("conditional_tokens", "ERC1155", "collateral_adapter", "v1 merge and redeem"),
    ("conditional_tokens", "ERC1155", "neg_risk_collateral_adapter", "v1 neg-risk merge and redeem"),
    ("conditional_tokens", "ERC1155", "neg_risk_adapter", "neg-risk convert"),
    ("position_manager", "ERC1155", "exchange_v3", "v2 SELL orders"),
    ("position_manager", "ERC1155", "protocol_v2_router", "v2 merge and redeem"),
)
NAMES = {
    "collateral_token": "pUSD", "conditional_tokens": "Conditional Tokens", "position_manager": "PositionManager",
    "standard_exchange": "CTF exchange", "neg_risk_exchange": "neg-risk CTF exchange", "exchange_v3": "ExchangeV3",
    "collateral_adapter": "collateral adapter", "neg_risk_collateral_adapter": "neg-risk collateral adapter",
    "protocol_v2_router": "Router", "neg_risk_adapter": "NegRiskAdapter",
}


@dataclass(frozen=True, slots=True)
class Approval:
    token: str  # the contract holding what is approved (pUSD, Conditional Tokens, PositionManager)
    token_name: str
    standard: Standard
    spender: str
    spender_name: str
    purpose: str

    @property
    def label(self) -> str:
        what = "allowance" if self.standard == "ERC20" else "approval for all"
        return f"{self.token_name} {what} to the {self.spender_name}"


@dataclass(frozen=True, slots=True)
class ApprovalState:
    approval: Approval
    value: int  # ERC-20: the allowance in base units; ERC-1155: 1 approved, 0 not

    @property
    def ok(self) -> bool:
        return self.value >= UNLIMITED if self.approval.standard == "ERC20" else self.value == 1


def required(env: VenueEnvironment) -> list[Approval]:
    """Every approval the contracts in use need, with the environment's addresses."""
    return [Approval(env.address(token), NAMES[token], standard, env.address(spender), NAMES[spender], purpose)
            for token, standard, spender, purpose in REQUIRED]


def missing_error(missing: list[Approval], wallet: str) -> VenueSetupError:
    """The one error a service raises when approvals are missing (nothing was sent)."""
    names = "; ".join(f"{a.label} {a.spender} ({a.purpose})" for a in missing)
    return VenueSetupError(f"wallet {wallet} lacks {len(missing)} approval(s): {names}",
                           f"run `{SETUP_COMMAND}` (it sends them), then `polyfleet doctor`")


def _read_call(a: Approval, wallet: str) -> bytes:
    return encode_approval("erc20_allowance" if a.standard == "ERC20" else "erc1155_is_approved_for_all",
                           wallet, a.spender)


async def read(rpc_url: str, wallet: str, approvals: list[Approval], timeout_s: float = 10.0) -> list[ApprovalState]:
    """Each approval's state, from one JSON-RPC batch of ``eth_call``s; :class:`VenueUnavailable`
    when the node cannot answer (nothing is known then, and nothing was sent)."""
    values = await eth_calls(rpc_url, [(a.token, _read_call(a, wallet)) for a in approvals], "approval read",
                             timeout_s)
    return [ApprovalState(a, v) for a, v in zip(approvals, values, strict=True)]


def calls(missing: list[Approval]) -> list[Any]:
    """The SDK transaction calls that grant ``missing`` (approve max / setApprovalForAll true)."""
    from polymarket.calls import erc20_approval_call, erc1155_set_approval_for_all_call
    from polymarket.types import EvmAddress

    out: list[Any] = []
    for a in missing:
        token, spender = EvmAddress(a.token), EvmAddress(a.spender)
        if a.standard == "ERC20":
            out.append(erc20_approval_call(token_address=token, spender=spender, amount=MAX_UINT256))
        else:
            out.append(erc1155_set_approval_for_all_call(token_address=token, operator=spender, approved=True))
    return out


async def grant(client: AsyncSecureClient, missing: list[Approval], timeout_s: float = 60.0) -> str:
    """Send ``missing`` through the SDK (relayed for a smart wallet, broadcast by an EOA) and wait
    for the outcome: the last transaction's hash. Raises like :class:`Positions` calls."""
    from shared.venue.positions import send_and_wait

    what = f"polyfleet approvals ({len(missing)})"
    return await send_and_wait(what, lambda: client.execute_transaction(calls=calls(missing), metadata=what),
                               timeout_s)


async def ensure(client: AsyncSecureClient, env: VenueEnvironment, wallet: str, send: bool = True,
                 timeout_s: float = 60.0) -> list[Approval]:
    """Read every approval ``wallet`` needs and, when ``send``, grant the missing ones; what was
    sent. Missing and not sent (``send`` false, the grant refused or of unknown outcome, or still
    missing when read back) raises :func:`missing_error` naming each contract and the command."""
    need = required(env)
    missing = [st.approval for st in await read(env.url("rpc_url"), wallet, need) if not st.ok]
    if not missing:
        return []
    if not send:
        raise missing_error(missing, wallet)
    try:
        await grant(client, missing, timeout_s)
    except VenueError as exc:
        raise missing_error(missing, wallet) from exc
    still = [st.approval for st in await read(env.url("rpc_url"), wallet, need) if not st.ok]
    if still:
        raise missing_error(still, wallet)
    return missing
