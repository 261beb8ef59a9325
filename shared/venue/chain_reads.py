"""View calls (``eth_call``) over the environment's JSON-RPC, in one batch: the chain is the
authority on balances and approvals (the CLOB's balance endpoint and the Data API index it and
can lag).

:func:`outcome_balances` reads what the wallet holds of outcomes: ERC-1155 ``balanceOf(wallet,
id)`` on the ledger of the outcome's market system, Conditional Tokens for a v1 (CTF) market and
PositionManager for a v2 one (docs/venue.md V7).
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from shared.venue.ctf_calls import UNIT
from shared.venue.errors import VenueUnavailable
from shared.venue.ids import OutcomeId

_BALANCE_OF = keccak(text="balanceOf(address,uint256)")[:4]
LEDGER = {"v1": "conditional_tokens", "v2": "position_manager"}  # environment address field per system


async def eth_calls(rpc_url: str, calls: list[tuple[str, bytes]], what: str, timeout_s: float = 10.0) -> list[int]:
    """Each ``(contract, calldata)`` view call's answer as an integer (a uint256 or bool), from one
    JSON-RPC batch; :class:`VenueUnavailable` when the node cannot answer one of them (nothing is
    known then)."""
    ids = itertools.count(1)
    batch = [{"jsonrpc": "2.0", "id": next(ids), "method": "eth_call",
              "params": [{"to": to, "data": "0x" + data.hex()}, "latest"]} for to, data in calls]
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            resp = await http.post(rpc_url, json=batch)
        if resp.status_code != 200:  # not raise_for_status: its text carries the URL, often with a key
            raise VenueUnavailable(f"{what}: HTTP {resp.status_code} from the RPC endpoint", resp.status_code)
        answers = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise VenueUnavailable(f"{what}: the RPC endpoint did not answer ({type(exc).__name__})") from exc
    by_id: dict[Any, Any] = {a.get("id"): a for a in answers if isinstance(a, dict)} if isinstance(answers, list) else {}
    out = []
    for request, (to, _) in zip(batch, calls, strict=True):
        answer = by_id.get(request["id"]) or {}
        result = answer.get("result")
        if not isinstance(result, str) or not result.startswith("0x"):
            raise VenueUnavailable(f"{what} at {to}: {answer.get('error') or 'no result'}")
        out.append(int(result, 16) if len(result) > 2 else 0)
    return out


async def outcome_balances(rpc_url: str, ledgers: dict[str, str], wallet: str,
                           outcomes: list[OutcomeId]) -> list[float]:
    """Shares of each outcome ``wallet`` holds on chain. ``ledgers``: market system -> the address
    of its ERC-1155 (see :data:`LEDGER`)."""
    calls = [(ledgers[o.system], _BALANCE_OF + encode(["address", "uint256"], [wallet, int(o.value)]))
             for o in outcomes]
    return [units / UNIT for units in await eth_calls(rpc_url, calls, "outcome balance read")]
