"""REST ``POST /books``: the venue's current book for tokens the socket cannot vouch for (B3, B4).

Used when a book disagreed with the venue's ``best_bid``/``best_ask`` (drift) and when a token has
been silent for ``gateway.stale_after_sec`` (is the market quiet, or did our socket stop
delivering?). Requests are batched (``BATCH`` tokens each) and the venue's limit on ``/books``
(500 per 10 s) is far above what this asks for: one batch per token at most every
``min_interval`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpx
from loguru import logger

from shared.venue.market_ws import BookSnapshot, MarketFrameError, decode_rest_book

BATCH = 100


class BookFetcher:
    def __init__(self, clob_url: str = "", timeout: float = 5.0, min_interval: float = 2.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.url = ""
        self.point_at(clob_url)
        self.min_interval = min_interval
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._last_asked: dict[str, float] = {}
        self.requests = 0
        self.failures = 0
        self.bad_books = 0

    def point_at(self, clob_url: str) -> None:
        """The CLOB whose ``/books`` this fetcher reads (known once the venue environment is)."""
        self.url = clob_url.rstrip("/") + "/books" if clob_url else ""

    def due(self, tokens: Iterable[str]) -> list[str]:
        """The tokens not asked for within ``min_interval`` (so a drifting token cannot hammer REST)."""
        now = time.monotonic()
        return sorted(t for t in set(tokens) if now - self._last_asked.get(t, -1e9) >= self.min_interval)

    async def fetch(self, tokens: list[str]) -> tuple[dict[str, BookSnapshot], list[str]]:
        """(books by token, tokens that could not be fetched). Never raises for network errors."""
        books: dict[str, BookSnapshot] = {}
        failed: list[str] = []
        now = time.monotonic()
        for t in tokens:
            self._last_asked[t] = now
        for i in range(0, len(tokens), BATCH):
            chunk = tokens[i:i + BATCH]
            self.requests += 1
            try:
                resp = await self._client.post(self.url, json=[{"token_id": t} for t in chunk])
                resp.raise_for_status()
                body = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                self.failures += 1
                logger.warning("POST /books for {} token(s) failed: {}: {}", len(chunk), type(exc).__name__, exc)
                failed.extend(chunk)
                continue
            for raw in body if isinstance(body, list) else []:
                try:
                    snap = decode_rest_book(raw)
                except MarketFrameError as exc:
                    self.bad_books += 1
                    logger.warning("bad book from POST /books skipped: {}", exc)
                    continue
                books[snap.asset_id] = snap
            failed.extend(t for t in chunk if t not in books)
        return books, failed

    def forget(self, tokens: Iterable[str]) -> None:
        for t in tokens:
            self._last_asked.pop(t, None)

    async def aclose(self) -> None:
        await self._client.aclose()
