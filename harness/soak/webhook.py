"""A tiny loopback HTTP receiver for the alerter's webhook: counts POSTs and keeps their bodies.

Plain asyncio (no framework): one request per connection, ``Content-Length`` bodies only, which is
all httpx sends for a JSON POST. Answers 200 to every POST, 404 to anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class WebhookReceiver:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []  # {"path", "body"} per POST, in arrival order
        self.bad = 0  # requests that were not a readable POST
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = "404 Not Found"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
            if method == "POST":
                try:
                    parsed: Any = json.loads(body or b"null")
                except ValueError:
                    parsed = body.decode("utf-8", "replace")
                self.posts.append({"path": path, "body": parsed})
                status = "200 OK"
            else:
                self.bad += 1
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            self.bad += 1
        with contextlib.suppress(Exception):
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            writer.close()
