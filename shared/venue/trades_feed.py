"""One wallet's trades from the Data API ``/trades``, paged by offset inside time windows (A3, A5):
the collector's poller and the leader backtest (shared/backtest_reads.py) read them the same way.

``takerOnly=false`` on every request: the venue's default (true) serves each fill once, on its
taker side, so a followed wallet's limit-order fills (maker rows) would never become signals
(docs/venue.md D2). v1 ``/trades`` rather than the SDK's ``/v2/trades``: see docs/venue.md D1.

``offset`` is capped at 10,000 (past it the API answers 400, not a clamp), so a backlog deeper
than that is read in windows: newest first with ``start=cursor``; when the next offset would pass
the cap, ``end`` moves down to the oldest second read so far and ``offset`` restarts at 0. Rows of
that boundary second are read twice; the cursor's de-duplication absorbs them.

Errors are sorted by what the caller must do: :class:`Throttled` (429 / 425 / 5xx / network:
back off, honouring ``Retry-After``) and :class:`Rejected` (another 4xx or a body that is not a
trade array: log, back off, try again later). Nothing else escapes.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import httpx
from loguru import logger

from shared.venue.data_api import row_timestamp

MAX_OFFSET = 10_000
RETRYABLE_STATUS = frozenset({425, 429, 500, 502, 503, 504})


class RequestBudget(Protocol):
    """A request budget (the collector's: services/signal_collector/budget.py): hold a slot per request."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...


class FetchError(Exception):
    """The poll failed; the cursor stays where it was."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(FetchError):
    """Rate limited, venue overloaded or unreachable: back off and retry."""


class Rejected(FetchError):
    """The request or the answer is wrong in a way a retry will not fix soon."""


async def _page(client: httpx.AsyncClient, url: str, params: dict[str, str | int],
                budget: RequestBudget | None) -> list[Any]:
    try:
        if budget is None:
            resp = await client.get(url, params=params)
        else:
            async with budget.slot():
                resp = await client.get(url, params=params)
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
    return page


def next_window(offset: int, page_size: int, end: int | None, window_rows: list[Any]) -> tuple[int, int | None]:
    """Where the next page starts: (offset, end). Pure, so the windowing is tested on its own.

    Raises :class:`Rejected` when a whole window holds one second only: going deeper would need
    an offset past the cap, which the API refuses.
    """
    offset += page_size
    if offset <= MAX_OFFSET:
        return offset, end
    stamps = [ts for ts in (row_timestamp(r) for r in window_rows) if ts is not None]
    if not stamps:
        raise Rejected("a whole /trades window had no readable timestamp")
    oldest = min(stamps)
    if end is not None and oldest >= end:
        raise Rejected(f"more than {MAX_OFFSET} trades in second {oldest}: deeper rows are unreachable")
    return 0, oldest


async def fetch_trades(client: httpx.AsyncClient, base_url: str, account: str, start: int,
                       page_size: int, budget: RequestBudget | None = None, max_rows: int = 0) -> list[Any]:
    """Every row with ``timestamp >= start`` (newest first, as served). Pages until a short page,
    or until ``max_rows`` rows are read (0: no limit; the oldest rows are then the ones left out).

    A trade that lands while we page shifts later pages by one, so a row can be read twice; the
    cursor's de-duplication absorbs that, while no row can be skipped.
    """
    url = f"{base_url.rstrip('/')}/trades"
    rows: list[Any] = []
    window: list[Any] = []
    offset, end = 0, None
    while True:
        params: dict[str, str | int] = {"user": account, "start": start, "limit": page_size, "offset": offset,
                                        "takerOnly": "false"}
        if end is not None:
            params["end"] = end
        page = await _page(client, url, params, budget)
        rows.extend(page)
        window.extend(page)
        if len(page) < page_size or 0 < max_rows <= len(rows):
            return rows
        try:
            offset, new_end = next_window(offset, page_size, end, window)
        except Rejected as exc:
            logger.warning("{}: {}; taking the {} rows read", account, exc, len(rows))
            return rows
        if new_end != end:
            logger.info("{}: more than {} trades since {}: next window ends at {}", account, MAX_OFFSET,
                        start, new_end)
            end, window = new_end, []
