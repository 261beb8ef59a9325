"""Routes for resolved markets' redemptions (docs/orchestrator.md "Redemption"): where each stands
(``pf:redeem:status``, the redeemer's) and the operator's retry, a ``redeem_retry`` control request
like every other write of the API. (No ``from __future__ import annotations``: FastAPI reads the
retry body's type, the app's own control body, from the annotation at run time.)"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from shared.clock import now_ms
from shared.keys import Keys
from shared.redemptions import RETRYABLE, RedeemStatus, read_redemptions

ConditionId = Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{64}$", description="condition id (0x + 64 hex digits)")]
Send = Callable[[str, str, Any], Awaitable[JSONResponse]]


def router(r: aioredis.Redis, keys: Keys, dependencies: list[Any], send: Send, body_type: type[Any]) -> APIRouter:
    """``send(action, target, body)`` writes the control request (the app's one write path);
    ``body_type`` is the app's plain control body (reason, wait)."""
    api = APIRouter(dependencies=dependencies, tags=["redemptions"])

    @api.get("/api/redemptions", summary="Every resolved market's redemption not booked yet: state, tries, next retry")
    async def redemptions() -> dict[str, Any]:
        return {"redemptions": await read_redemptions(r, keys), "now_ms": now_ms()}

    @api.post("/api/redemptions/{condition_id}/retry",
              summary="Retry a failed, unknown or stuck redemption now (the redeemer's next check); "
                      "404 when there is none, 409 when it is not in a retryable state")
    async def retry(condition_id: ConditionId, body: body_type) -> JSONResponse:  # type: ignore[valid-type]
        raw = await r.hget(keys.redeem_status(), condition_id)
        st = RedeemStatus.parse(condition_id, raw) if raw else None
        if st is None:
            raise HTTPException(404, f"no redemption of {condition_id} is pending; nothing done")
        if st.state not in RETRYABLE:
            raise HTTPException(409, f"the redemption of {condition_id} is {st.state}, not failed, unknown or stuck; "
                                     "nothing done")
        return await send("redeem_retry", condition_id, body)

    return api
