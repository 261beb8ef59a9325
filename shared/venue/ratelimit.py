"""What the venue last said about one signer's order and cancel budget (docs/venue.md R2).

The CLOB reports per-signer token-bucket state in ``Poly-RateLimit-*`` headers on order and cancel
answers; the official SDK hands each report to a listener (``on_rate_limit_update``) and a 429 to
the caller as ``retry_after``. :class:`SignerRateLimit` keeps the latest of both for one signer, so
a caller can hold back before the venue says no. It is a plain in-process object; the budget the
whole fleet shares through Redis is :mod:`shared.venue.rate_budget`, fed from here.

The headers do not say which bucket (orders or cancels) they count; the call that got them does.
:func:`collecting` gathers the reports of the calls made inside it (the listener runs in the
caller's task, so a context variable tells concurrent calls apart), which lets the order side
(``orders.py``) file each report under its own bucket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from polymarket.rate_limit import RateLimitUpdate

_COLLECTING: ContextVar[list[RateLimitUpdate] | None] = ContextVar("rate_limit_reports", default=None)


@contextmanager
def collecting() -> Iterator[list[RateLimitUpdate]]:
    """The rate-limit reports of the venue calls made inside the block (in this task), in order."""
    reports: list[RateLimitUpdate] = []
    token = _COLLECTING.set(reports)
    try:
        yield reports
    finally:
        _COLLECTING.reset(token)


@dataclass
class SignerRateLimit:
    signer: str
    remaining: float | None = None  # tokens left in the bucket the last answer was counted against
    reset: float | None = None  # unix seconds when the current wait period ends
    tier: str = ""
    warning: bool = False  # warning mode: this request would have been refused under enforcement
    throttled_until: float = 0.0  # unix seconds: after a 429, no request before this
    reports: int = 0
    updated_at: float = 0.0

    def on_update(self, update: RateLimitUpdate) -> None:
        """The SDK's listener: called synchronously for each answer that carries the headers."""
        if update.remaining is not None:
            self.remaining = update.remaining
        if update.reset is not None:
            self.reset = update.reset
        if update.tier:
            self.tier = update.tier
        self.warning = bool(update.warning)
        self.reports += 1
        self.updated_at = time.time()
        reports = _COLLECTING.get()
        if reports is not None:
            reports.append(update)

    def on_throttled(self, retry_after: float | None, now: float | None = None) -> None:
        """A 429: hold requests for ``retry_after`` seconds (1 s when the venue named none)."""
        at = time.time() if now is None else now
        self.throttled_until = max(self.throttled_until, at + (retry_after if retry_after is not None else 1.0))

    def wait_s(self, now: float | None = None) -> float:
        """Seconds to wait before the next request: after a 429, or while the bucket is empty."""
        at = time.time() if now is None else now
        wait = max(0.0, self.throttled_until - at)
        if self.remaining is not None and self.remaining <= 0 and self.reset is not None:
            wait = max(wait, self.reset - at)
        return wait

    def snapshot(self) -> dict[str, Any]:
        return {"signer": self.signer, "remaining": self.remaining, "reset": self.reset, "tier": self.tier,
                "warning": self.warning, "throttled_until": self.throttled_until, "reports": self.reports,
                "updated_at": self.updated_at}
