"""``GET /api/leaders/{address}/backtest?days=N`` (docs/copytrading.md "Backtest"): the dashboard's
what-if. The reads and the replay are shared with ``polyfleet leaders backtest``
(shared/backtest_reads.py); this keeps the venue's URLs once known and runs one backtest at a time
(a long history is many Data API pages: two operators asking at once wait for each other rather
than doubling the load on the venue)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import HTTPException

from shared.backtest_reads import BadRequest, NoHistory, VenueDown, run_backtest, venue
from shared.config import Settings
from shared.venue.environment import VenueEnvironment

HTTP_TIMEOUT_SEC = 10.0


class Backtests:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._env: VenueEnvironment | None = None
        self._one = asyncio.Semaphore(1)

    async def run(self, account: str, days: int) -> dict[str, Any]:
        """The result, or the HTTP error whose detail says why there is none: 422 bad input, 404 no
        history in the window, 503 the venue is unreachable."""
        async with self._one:
            try:
                self._env = self._env or await venue(self.settings)
                async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SEC) as http:
                    return await run_backtest(self.settings, self._env, http, account, days)
            except BadRequest as exc:
                raise HTTPException(422, str(exc)) from exc
            except NoHistory as exc:
                raise HTTPException(404, str(exc)) from exc
            except VenueDown as exc:
                raise HTTPException(503, str(exc)) from exc
