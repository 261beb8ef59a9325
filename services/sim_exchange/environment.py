"""``GET /_sim/environment``: the sim as a venue environment, with the official SDK's field names.

Clients build their whole view of the venue from this one answer (shared/venue/environment.py),
so the unmodified SDK can be pointed at the sim. URLs are on the host the caller used to reach the
sim (its ``Host`` header): a container that knows the sim as ``sim_exchange:8700`` gets URLs on that
name, a test on ``127.0.0.1:<port>`` gets those. Endpoints the sim does not serve (RFQ, perps,
sports, the realtime socket, ...) point at a path that answers 404, so a stray call fails here
instead of reaching production.

Contract addresses: the sim's own by default (``sim_exchange.own_addresses: true``): every contract
and wallet-derivation address is ``keccak("polyfleet-sim:" + field)[-20:]`` checksummed (the Safe
init-code hash is the whole 32-byte keccak), so a production address typed by hand anywhere shows
up as a refusal (an order signed for production's exchange: "invalid signature"). Every caller
reads its addresses from this answer (shared/venue/environment.py). ``own_addresses: false``
serves production's addresses instead. Everything
the sim verifies or reports (order domains, the RPC's contracts, approvals, relayer targets,
wallet derivation) reads :class:`SimEnvironment`, never a literal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.venue.environment import CONTRACT_FIELDS, WALLET_DERIVATION_FIELDS, production

RELAYER_POLL_MS = 100  # the SDK polls the relayer and receipts at this pace (production: 2000 ms)
RELAYER_MAX_POLLS = 600

_PATHS = {
    "clob_url": "http://{h}",
    "clob_market_ws_url": "ws://{h}/ws/market",
    "clob_user_ws_url": "ws://{h}/ws/user",
    "relayer_url": "http://{h}/relayer",
    "gamma_url": "http://{h}/gamma",
    "data_url": "http://{h}/data-api",
    "rtds_ws_url": "ws://{h}/ws/live-data",
    "rpc_url": "http://{h}/_sim/rpc",
}
_NOT_SERVED = ("rfq_url", "sports_ws_url", "rfq_quoter_ws_url", "builder_gateway_url", "collateral_return_url",
               "perps_url", "perps_ws_url", "realtime_ws_url")
_HASHES = ("safe_init_code_hash",)  # 32-byte values among the wallet-derivation fields


def own_address(name: str) -> str:
    """The sim's own address for environment field ``name``."""
    return to_checksum_address(keccak(text=f"polyfleet-sim:{name}")[-20:])


def _is_address(value: object) -> bool:
    return isinstance(value, str) and value.startswith("0x") and len(value) == 42


@dataclass(frozen=True)
class SimEnvironment:
    """The sim's chain id and contract addresses (URLs are added per request by :meth:`json`)."""

    chain_id: int = 137
    own_addresses: bool = True
    contracts: dict[str, str] = field(init=False, repr=False)
    derivation: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.own_addresses:  # no production value needed, so the sim does not import the SDK
            contracts = {k: own_address(k) for k in CONTRACT_FIELDS}
            wd = {k: ("0x" + keccak(text=f"polyfleet-sim:{k}").hex()) if k in _HASHES else own_address(k)
                  for k in WALLET_DERIVATION_FIELDS}
        else:
            prod = production().config
            wd = {k: str(v) for k, v in prod["wallet_derivation"].items()}
            contracts = {k: str(v) for k, v in prod.items() if _is_address(v)}
        object.__setattr__(self, "contracts", contracts)
        object.__setattr__(self, "derivation", wd)

    def address(self, name: str) -> str:
        """A contract address (``standard_exchange``, ``position_manager``, ...), checksummed."""
        return self.contracts[name]

    def json(self, host: str) -> dict[str, Any]:
        out: dict[str, Any] = dict(production().config)  # every field the SDK's config has
        out.update(self.contracts)
        out["wallet_derivation"] = dict(self.derivation)
        out["chain_id"] = self.chain_id
        for name, pattern in _PATHS.items():
            out[name] = pattern.format(h=host)
        for name in _NOT_SERVED:
            scheme = "ws" if name.endswith("ws_url") else "http"
            out[name] = f"{scheme}://{host}/_sim/not-served/{name}"
        out["rfq_quoter_ws_headers"] = None
        out["realtime_ws_headers"] = None
        out["relayer_poll_frequency_ms"] = RELAYER_POLL_MS
        out["relayer_max_polls"] = RELAYER_MAX_POLLS
        return out


def environment_json(host: str, chain_id: int, own_addresses: bool = True) -> dict[str, Any]:
    return SimEnvironment(chain_id, own_addresses).json(host)


def router(env: SimEnvironment) -> APIRouter:
    r = APIRouter()

    @r.get("/_sim/environment")
    async def environment(request: Request) -> dict[str, Any]:
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return env.json(host)

    @r.api_route("/_sim/not-served/{name}", methods=["GET", "POST", "PUT", "DELETE"])
    async def not_served(name: str) -> JSONResponse:
        return JSONResponse({"error": f"{name} is not served by the sim"}, status_code=404)

    return r
