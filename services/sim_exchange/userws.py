"""The user websocket (``/ws/user``): an API key's own orders and trades as they change.

Shapes as the official SDK parses them (docs/venue.md U1; sdk-wire §11.2):

* subscribe: ``{"type": "user", "auth": {"apiKey", "secret", "passphrase"}, "markets": [condition
  ids]}`` (no ``markets``: all); later ``{"operation": "subscribe"|"unsubscribe", "markets": [...]}``;
  text ``PING`` -> ``PONG``. Credentials that are not an issued key close the socket (1008).
* ``order`` events: ``type`` ``PLACEMENT`` (accepted: live, delayed or matched at once),
  ``UPDATE`` (a fill), ``CANCELLATION`` (with the sim's ``cancel_reason``: user,
  heartbeat_expired, restart, expired, market_resolved, unmatched).
* ``trade`` events: the ``/data/trades`` row of the trade, once per status (MATCHED, MINED,
  CONFIRMED, or RETRYING, FAILED), with ``transaction_hash`` from MINED/RETRYING on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from services.sim_exchange import wire
from services.sim_exchange.auth import ApiKey, Authenticator
from services.sim_exchange.matching import Fill, Order
from services.sim_exchange.settlement import ON_CHAIN
from services.sim_exchange.socketloop import close_all, json_object, run_connection

QUEUE_MAX = 10_000


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def order_event(o: Order, kind: str, now: float) -> dict[str, Any]:
    event = {
        "event_type": "order", "type": kind, "id": o.id, "owner": o.owner, "order_owner": o.owner,
        "market": o.condition_id, "asset_id": o.token_id, "side": o.side, "original_size": wire.num(o.size),
        "size_matched": wire.num(o.size_matched), "price": wire.num(o.price), "outcome": o.outcome,
        "order_type": o.order_type, "status": o.status, "maker_address": o.maker_address,
        "associate_trades": [f.trade_id for f in o.fills], "created_at": str(int(o.created_at)),
        "expiration": str(o.expiration), "timestamp": wire.ms(now),
    }
    if kind == "CANCELLATION":
        event["cancel_reason"] = o.cancel_reason
    return event


def trade_event(o: Order, f: Fill, status: str, now: float) -> dict[str, Any]:
    """The trade as it was at ``status`` (a trade settled at once moves through every status in one go)."""
    return {**wire.l2_trade(o, f), "status": status, "transaction_hash": f.tx_hash if status in ON_CHAIN else "",
            "event_type": "trade", "type": "TRADE", "trade_owner": o.owner, "timestamp": wire.ms(now)}


@dataclass(eq=False)
class UserClient:
    ws: WebSocket
    key: ApiKey
    markets: set[str] | None = None  # lower-case condition ids; None = every market
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))

    def wants(self, market: str) -> bool:
        return self.markets is None or market.lower() in self.markets


class UserHub:
    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self.clients: set[UserClient] = set()

    def emit(self, owner: str, market: str, event: dict[str, Any]) -> None:
        text = _dumps(event)
        for c in list(self.clients):
            if c.key.key == owner and c.wants(market) and not c.queue.full():
                c.queue.put_nowait(text)

    async def drop_all(self) -> int:
        """Close every user socket (a reset venue keeps no connections)."""
        return await close_all(self.clients, code=1012)

    def _key(self, auth: Any) -> ApiKey | None:
        if not isinstance(auth, dict):
            return None
        key = self.auth.keys.get(str(auth.get("apiKey", "")))
        if key is None or auth.get("secret") != key.secret or auth.get("passphrase") != key.passphrase:
            return None
        return key

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            first = json.loads(await ws.receive_text())
        except (ValueError, WebSocketDisconnect, RuntimeError):
            with contextlib.suppress(Exception):
                await ws.close(code=1008)
            return
        key = self._key(first.get("auth") if isinstance(first, dict) else None)
        if key is None:
            with contextlib.suppress(Exception):
                await ws.send_text(_dumps({"error": "Unauthorized/Invalid api key"}))
                await ws.close(code=1008)
            return
        wanted = first.get("markets")
        client = UserClient(ws, key, {str(m).lower() for m in wanted} if isinstance(wanted, list) and wanted else None)
        self.clients.add(client)
        try:
            await run_connection(ws, client.queue, lambda text: self._on_message(client, text))
        finally:
            self.clients.discard(client)

    @staticmethod
    def _on_message(client: UserClient, text: str) -> None:
        if text.strip().upper() == "PING":
            client.queue.put_nowait("PONG")
            return
        msg = json_object(text)
        if msg is None:
            return
        markets = {str(m).lower() for m in msg.get("markets") or []}
        op = str(msg.get("operation") or "").lower()
        if client.markets is None:  # subscribed to every market: more is nothing, "all but" is not expressible
            return
        if op == "subscribe":
            client.markets |= markets
        elif op == "unsubscribe":
            client.markets -= markets
