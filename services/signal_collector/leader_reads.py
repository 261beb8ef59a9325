"""The collector's periodic per-leader Data API reads (portfolio values, venue PnL and volume): each
request takes a slot of the shared budget, like the polls; a 429 is a verdict on our IP, so it
pauses the budget (the polls too) for its ``Retry-After`` and ends the round, and the leaders not
read keep their last figures. A wallet whose read fails otherwise is logged and skipped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx
from loguru import logger

from services.signal_collector.budget import RequestBudget
from shared.backoff import honour_retry_after

T = TypeVar("T")
THROTTLED_PAUSE_SEC = 60.0  # the longest a 429's Retry-After holds the budget back


class DataApiThrottled(Exception):
    def __init__(self, retry_after: str | None) -> None:
        super().__init__(f"429 Too Many Requests (Retry-After {retry_after})")
        self.retry_after = retry_after


async def budgeted_get(http: httpx.AsyncClient, url: str, params: dict[str, Any], budget: RequestBudget) -> Any:
    """One Data API read in a slot of the collector's budget; a 429 raises :class:`DataApiThrottled`."""
    async with budget.slot():
        resp = await http.get(url, params=params)
    if resp.status_code == 429:
        raise DataApiThrottled(resp.headers.get("Retry-After"))
    resp.raise_for_status()
    return resp.json()


async def read_each(accounts: Iterable[str], read: Callable[[str], Awaitable[T | None]], budget: RequestBudget,
                    what: str) -> dict[str, T]:
    """``read`` of every account, in turn: what came back (None: nothing to store for it)."""
    got: dict[str, T] = {}
    for account in accounts:
        try:
            value = await read(account)
        except DataApiThrottled as exc:
            budget.pause(honour_retry_after(1.0, exc.retry_after, THROTTLED_PAUSE_SEC))
            logger.warning("{} of {}: {}; the rest wait for the next round", what, account, exc)
            break
        except (httpx.HTTPError, ValueError) as exc:  # a body that does not parse is a ValueError
            logger.warning("{} of {}: {}", what, account, exc)
            continue
        if value is not None:
            got[account] = value
    return got
