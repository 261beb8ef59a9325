"""One target's trades from the Data API ``/trades``, paged by offset (A3, A5).

Errors are sorted by what the caller must do: :class:`Throttled` (429 / 425 / 5xx / network:
back off, honouring ``Retry-After``) and :class:`Rejected` (another 4xx or a body that is not a
trade array: log, back off, try again later). Nothing else escapes.
"""

from __future__ import annotations

from typing import Any

import httpx
from loguru import logger

MAX_OFFSET = 10_000  # the API answers 400 past this; deeper history needs start/end windows
RETRYABLE_STATUS = frozenset({425, 429, 500, 502, 503, 504})


class FetchError(Exception):
    """The poll failed; the cursor stays where it was."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(FetchError):
    """Rate limited, venue overloaded or unreachable: back off and retry."""


class Rejected(FetchError):
    """The request or the answer is wrong in a way a retry will not fix soon."""


async def fetch_trades(client: httpx.AsyncClient, base_url: str, account: str, start: int,
                       page_size: int) -> list[Any]:
    """Every row with ``timestamp >= start`` (newest first, as served). Pages until a short page.

    A trade that lands while we page shifts later pages by one, so a row can be read twice; the
    cursor's de-duplication absorbs that, while no row can be skipped.
    """
    rows: list[Any] = []
    offset = 0
    while True:
        params: dict[str, str | int] = {"user": account, "start": start, "limit": page_size, "offset": offset}
        try:
            resp = await client.get(f"{base_url.rstrip('/')}/trades", params=params)
        except httpx.HTTPError as exc:
            raise Throttled(f"GET /trades failed: {type(exc).__name__}: {exc}") from exc
        if resp.status_code in RETRYABLE_STATUS or resp.status_code >= 500:
            raise Throttled(f"GET /trades -> {resp.status_code}", resp.headers.get("Retry-After"))
        if resp.status_code != 200:
            raise Rejected(f"GET /trades -> {resp.status_code}: {resp.text[:200]}")
        try:
            page = resp.json()
        except ValueError as exc:
            raise Rejected(f"GET /trades: body is not JSON: {resp.text[:80]!r}") from exc
        if not isinstance(page, list):
            raise Rejected(f"GET /trades: body is not an array: {str(page)[:80]!r}")
        rows.extend(page)
        if len(page) < page_size:
            return rows
        offset += page_size
        if offset > MAX_OFFSET:
            logger.warning("{}: more than {} trades since {}; taking the newest {} (older ones lost)",
                           account, MAX_OFFSET, start, len(rows))
            return rows
