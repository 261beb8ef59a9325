"""JSON-RPC over a websocket (``ws://…/_sim/rpc``), with ``eth_subscribe("logs", filter)``.

Every method of the HTTP endpoint is answered here too, one request or a batch per text frame.
``eth_subscribe`` takes ``"logs"`` and a filter (address, topics; a block range is refused: a
subscription delivers new blocks only, :mod:`logfilter`) and answers a subscription id; each
matching log of every block sealed afterwards comes as its own notification
``{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription": id, "result": log}}``,
in block and log order. ``eth_unsubscribe(id)`` answers true or false. A client that falls more
than ``QUEUE_MAX`` frames behind is disconnected, as a node drops a subscriber that does not read
("subscription queue overflow").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import WebSocket

from services.sim_exchange.chainlog import ChainLog
from services.sim_exchange.logfilter import BadFilter, LogFilter, parse_filter
from services.sim_exchange.socketloop import run_connection

QUEUE_MAX = 20_000
Answer = Callable[[Any], dict[str, Any]]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class RpcSocket:
    def __init__(self, ws: WebSocket, chain: ChainLog, answer: Answer) -> None:
        self.ws = ws
        self.chain = chain
        self.answer = answer  # one JSON-RPC request -> its response (the HTTP endpoint's)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_MAX)
        self.subs: dict[str, LogFilter] = {}
        self._next = 0
        self.overflowed = False

    def on_logs(self, logs: list[dict[str, Any]]) -> None:
        for sid, flt in list(self.subs.items()):
            for log in logs:
                if flt.matches(log):
                    self._send({"jsonrpc": "2.0", "method": "eth_subscription",
                                "params": {"subscription": sid, "result": dict(log)}})

    def _send(self, obj: Any) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= QUEUE_MAX - 1:
            self.overflowed = True
            self.subs.clear()
            self.queue.put_nowait(None)  # the sender stops; the socket is closed below
            asyncio.get_running_loop().create_task(self._close())
            return
        self.queue.put_nowait(_dumps(obj))

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=1008, reason="subscription queue overflow")

    def _request(self, req: Any) -> dict[str, Any]:
        method = req.get("method") if isinstance(req, dict) else None
        if method not in ("eth_subscribe", "eth_unsubscribe"):
            return self.answer(req)
        rid, params = req.get("id"), req.get("params")
        params = params if isinstance(params, list) else []
        if method == "eth_unsubscribe":
            return {"jsonrpc": "2.0", "id": rid, "result": self.subs.pop(str(params[0]) if params else "", None)
                    is not None}
        if not params or params[0] != "logs":
            kind = params[0] if params else None
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": f"no {kind!r} subscription "
                                                           "here: only logs"}}
        try:
            flt = parse_filter(params[1] if len(params) > 1 else None, subscription=True)
        except BadFilter as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": str(exc)}}
        self._next += 1
        sid = hex(0x5EB0000 + self._next)
        self.subs[sid] = flt
        return {"jsonrpc": "2.0", "id": rid, "result": sid}

    def on_text(self, text: str) -> None:
        try:
            body = json.loads(text)
        except ValueError:
            self._send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
            return
        self._send([self._request(b) for b in body] if isinstance(body, list) else self._request(body))


async def serve(ws: WebSocket, chain: ChainLog, answer: Answer) -> None:
    await ws.accept()
    client = RpcSocket(ws, chain, answer)
    chain.listeners.append(client.on_logs)
    try:
        await run_connection(ws, client.queue, client.on_text)
    finally:
        chain.listeners.remove(client.on_logs)
