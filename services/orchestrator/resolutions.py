"""Resolutions: a market the venue resolved (``pf:resolutions``, from the gateway's market channel).

Each of the market's tokens the orchestrator knows stops: a starting or running session exits (now,
or queued for an exit slot), a queued token leaves the queue. A position still held in one of them
(the token hash's ``position``, from fills) is flagged for redemption: an entry in
``pf:redeemable`` with what a redeem needs (condition id, which outcome won, the market system,
neg-risk) and a ``position.redeemable`` event. The redeem itself is the redeemer's (issue 16
item 5); the entry stays until it is done. Once the redemptions of every flagged token of a market
are booked, its ``pf:redeem:status`` (the redeemer's record of it) and any operator retry go too.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from services.orchestrator.intake import Intake
from services.orchestrator.store import Pipe, TokenStore
from shared.clock import now_ms
from shared.fleet import DUST, EXITABLE_STATES
from shared.keys import Keys
from shared.messages import Redemption, Resolution


def redeem_record(msg: Resolution, token_id: str, token: dict[str, str], now: int) -> dict[str, Any]:
    """What a redeem of ``token_id``'s position needs, from the resolution and the token's hash."""
    try:
        params = json.loads(token.get("params") or "{}")
    except ValueError:
        params = {}
    return {
        "condition_id": msg.condition_id, "token_id": token_id, "won": token_id == msg.winning_token,
        "winning_token": msg.winning_token, "winning_outcome": msg.winning_outcome,
        "position": float(token.get("position") or 0.0),  # matched (pending trades included)
        "position_confirmed": float(token.get("position_confirmed") or token.get("position") or 0.0),
        "market_version": token.get("market_version") or params.get("market_version") or "v1",
        "neg_risk": bool(params.get("neg_risk", False)), "resolved_at": now,
    }


class Resolutions:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: TokenStore, intake: Intake) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.intake = intake

    async def on_resolution(self, pipe: Pipe, msg: Resolution, cause: str) -> None:
        won = msg.winning_outcome or (msg.winning_token[:16] + "..." if msg.winning_token else "winner not named")
        reason = f"market resolved ({won} won)"
        now = now_ms()
        flagged: list[str] = []
        for token_id in msg.token_ids:
            view, token = await self.store.view(token_id)
            if not token:
                continue  # never traded here (the arbitrage's, or nobody's)
            if view.state in EXITABLE_STATES:
                await self.intake.request_exit(pipe, token_id, view.owner, view.epoch, reason, cause)
            elif view.state == "queued":
                await self.intake.dequeue(pipe, token_id, reason, cause)
            if abs(float(token.get("position") or 0.0)) >= DUST:
                record = redeem_record(msg, token_id, token, now)
                pipe.hset(self.keys.redeemable(), token_id, json.dumps(record, sort_keys=True))
                self.store.event(pipe, "position.redeemable", token_id, reason, cause=cause,
                                 **{k: v for k, v in record.items() if k != "token_id"})
                flagged.append(token_id)
        self.store.event(pipe, "market.resolved", "", reason, cause=cause, condition_id=msg.condition_id,
                         tokens=msg.token_ids, winning_token=msg.winning_token, redeemable=flagged)

    async def on_redeemed(self, pipe: Pipe, msg: Redemption) -> None:
        """``msg``'s token is booked in this transaction: with no other token of its market still
        flagged, the market's redemption is over and its status goes (the redeemer reports every
        token of a market together, so the last one booked closes it)."""
        for token_id, raw in (await self.redis.hgetall(self.keys.redeemable())).items():
            try:
                same = json.loads(raw).get("condition_id") == msg.condition_id
            except (ValueError, AttributeError):
                same = False
            if same and token_id != msg.token_id:
                return
        pipe.hdel(self.keys.redeem_status(), msg.condition_id)
        pipe.hdel(self.keys.redeem_retry(), msg.condition_id)
