"""A Polygon JSON-RPC client for the chain source: over HTTP (httpx) or a websocket (websockets).

:func:`open_rpc` picks by the URL's scheme. Both answer :meth:`call`; the websocket one also
:meth:`WsRpc.subscribe`\\s (``eth_subscribe("logs", filter)``) and queues each
``eth_subscription`` notification as ``(subscription id, log)`` in :attr:`WsRpc.notifications`.

Errors are sorted by what the caller must do: :class:`RpcError` (the node answered an error
object, or HTTP 413 as some providers refuse a wide ``eth_getLogs``: the request was understood
and refused) and :class:`RpcUnavailable` (network, 429, 5xx, a body that is not JSON-RPC, a closed
socket: back off, honouring ``Retry-After``, and reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

TIMEOUT_SEC = 10.0
_NETWORK = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError)


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RpcUnavailable(Exception):
    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _result(method: str, body: Any) -> Any:
    if not isinstance(body, dict) or ("result" not in body and "error" not in body):
        raise RpcUnavailable(f"{method}: not a JSON-RPC answer: {str(body)[:120]!r}")
    err = body.get("error")
    if err is not None:
        code = err.get("code") if isinstance(err, dict) else None
        raise RpcError(code if isinstance(code, int) else 0, str(err.get("message") if isinstance(err, dict) else err))
    return body["result"]


class HttpRpc:
    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client
        self._ids = itertools.count(1)

    async def call(self, method: str, params: list[Any]) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            resp = await self.client.post(self.url, json=payload, timeout=TIMEOUT_SEC)
        except httpx.HTTPError as exc:
            raise RpcUnavailable(f"{method}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 413:
            raise RpcError(413, resp.text[:200])
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RpcUnavailable(f"{method}: HTTP {resp.status_code}", resp.headers.get("Retry-After"))
        try:
            body = resp.json()
        except ValueError as exc:
            raise RpcUnavailable(f"{method}: HTTP {resp.status_code}, body is not JSON: {resp.text[:80]!r}") from exc
        return _result(method, body)

    async def close(self) -> None:
        """The HTTP client is the caller's."""


class WsRpc:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.notifications: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> WsRpc:
        try:
            ws = await connect(url, open_timeout=TIMEOUT_SEC, close_timeout=2, ping_interval=20, ping_timeout=20,
                               max_size=64 * 2**20)
        except _NETWORK as exc:
            raise RpcUnavailable(f"connect {url}: {type(exc).__name__}: {exc}") from exc
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                for item in msg if isinstance(msg, list) else [msg]:
                    self._dispatch(item)
        except _NETWORK:
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RpcUnavailable("the RPC socket closed"))
            self._pending.clear()

    def _dispatch(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if item.get("method") == "eth_subscription":
            params = item.get("params")
            if isinstance(params, dict) and isinstance(params.get("result"), dict):
                self.notifications.put_nowait((str(params.get("subscription")), params["result"]))
            return
        fut = self._pending.pop(item["id"], None) if isinstance(item.get("id"), int) else None
        if fut is not None and not fut.done():
            fut.set_result(item)

    @property
    def closed(self) -> bool:
        return self._reader.done()

    async def call(self, method: str, params: list[Any]) -> Any:
        if self.closed:
            raise RpcUnavailable("the RPC socket is closed")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
            body = await asyncio.wait_for(fut, TIMEOUT_SEC)
        except _NETWORK as exc:
            raise RpcUnavailable(f"{method}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._pending.pop(rid, None)
        return _result(method, body)

    async def subscribe(self, log_filter: dict[str, Any]) -> str:
        return str(await self.call("eth_subscribe", ["logs", log_filter]))

    async def close(self) -> None:
        with contextlib.suppress(*_NETWORK):
            await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


async def open_rpc(url: str, client: httpx.AsyncClient) -> HttpRpc | WsRpc:
    """A client for ``url``: a websocket for ``ws://``/``wss://``, HTTP otherwise."""
    if url.startswith(("ws://", "wss://")):
        return await WsRpc.open(url)
    return HttpRpc(url, client)
