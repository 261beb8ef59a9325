"""The relayer's routes under ``/relayer`` (the environment's ``relayer_url``); logic in :mod:`relayer`.

``GET /deployed?address=&type=``, ``GET /v1/account/transactions/params?address=<owner>&type=``,
``GET /relay-payload?address=<owner>&type=PROXY``, ``GET /v1/account/transactions/{id}`` are
public; ``POST /submit`` needs a builder key (``POLY_BUILDER_*`` headers, minted by ``POST
/auth/builder-api-key``), its HMAC over the path without the ``/relayer`` prefix, as the SDK signs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from loguru import logger

from services.sim_exchange.auth import AuthError
from services.sim_exchange.relayer import Relayer, RelayerError
from services.sim_exchange.state import SimState

PREFIX = "/relayer"


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def router(state: SimState) -> APIRouter:
    r = APIRouter(prefix=PREFIX)
    relayer = Relayer(state.env, state.wallets, state.contracts, state.cfg.relayer_step_ms / 1000,
                      stall=state.faults.take_relayer_stall)

    @r.get("/deployed")
    async def deployed(request: Request) -> Any:
        q = request.query_params
        if not q.get("address"):
            return _err(400, "address is required")
        return {"deployed": relayer.deployed(q["address"], q.get("type"))}

    def owner_read(read: Callable[[str, str], dict[str, str]], default_type: str) -> Any:
        """A read by owner and transaction type (``?address=<owner>&type=``)."""
        async def handler(request: Request) -> Any:
            q = request.query_params
            try:
                return read(q.get("address", ""), q.get("type", default_type))
            except RelayerError as exc:
                return _err(400, str(exc))
        return handler

    r.add_api_route("/v1/account/transactions/params", owner_read(relayer.params, ""), methods=["GET"])
    r.add_api_route("/relay-payload", owner_read(relayer.relay_payload, "PROXY"), methods=["GET"])

    @r.post("/submit")
    async def submit(request: Request) -> Any:
        raw = (await request.body()).decode("utf-8", "replace")
        try:
            state.auth.builder(request.headers, "POST", request.url.path.removeprefix(PREFIX), raw)
        except AuthError as exc:
            return _err(401, f"{exc}: gasless transactions need a builder API key")
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise RelayerError("body must be an object")
            tx = relayer.submit(body)
        except (ValueError, RelayerError) as exc:
            logger.info("relayer refused: {}", exc)
            return _err(400, str(exc))
        logger.info("relayer {} {} for {} ({} calls){}", tx.type, tx.id[:8], tx.wallet, len(tx.calls),
                    f": {tx.error}" if tx.error else "")
        return {"transactionID": tx.id, "state": "STATE_NEW"}

    @r.get("/v1/account/transactions/{tx_id}")
    async def transaction(tx_id: str) -> Any:
        view = relayer.view(tx_id)
        return view if view is not None else _err(404, f"transaction {tx_id} not found")

    @r.get("/transactions")
    async def transactions(request: Request) -> Any:
        """Admin view (not a venue route): every relayed transaction, optionally of one owner."""
        only = request.query_params.get("owner", "").lower()
        return [relayer.view(t.id) for t in relayer.txs.values() if not only or t.owner == only]

    return r
