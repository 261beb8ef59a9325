"""``GET /_sim/environment``: the sim as a venue environment, with the official SDK's field names.

Clients build their whole view of the venue from this one answer (shared/venue/environment.py),
so the unmodified SDK can be pointed at the sim. URLs are on the host the caller used to reach the
sim (its ``Host`` header): a container that knows the sim as ``sim_exchange:8700`` gets URLs on that
name, a test on ``127.0.0.1:<port>`` gets those. Endpoints the sim does not serve (RFQ, perps,
sports, the realtime socket, ...) point at a path that answers 404, so a stray call fails here
instead of reaching production.

Contract addresses are production's for now: py-clob-client-v2, still used by some callers, signs
against the addresses it has built in for chain 137 (docs/venue.md, "Environments").
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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


def environment_json(host: str, chain_id: int) -> dict[str, Any]:
    from polymarket._internal.environment import PRODUCTION_CONFIG

    out: dict[str, Any] = {f.name: getattr(PRODUCTION_CONFIG, f.name) for f in dataclasses.fields(PRODUCTION_CONFIG)}
    out["wallet_derivation"] = {f.name: getattr(PRODUCTION_CONFIG.wallet_derivation, f.name)
                                for f in dataclasses.fields(PRODUCTION_CONFIG.wallet_derivation)}
    out["chain_id"] = chain_id
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


def router(chain_id: int) -> APIRouter:
    r = APIRouter()

    @r.get("/_sim/environment")
    async def environment(request: Request) -> dict[str, Any]:
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return environment_json(host, chain_id)

    @r.api_route("/_sim/not-served/{name}", methods=["GET", "POST", "PUT", "DELETE"])
    async def not_served(name: str) -> JSONResponse:
        return JSONResponse({"error": f"{name} is not served by the sim"}, status_code=404)

    return r
