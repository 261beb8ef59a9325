"""Retry delays as a pure function of the attempt number (configured by ``retry_strategy.*``)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from shared.config import RetryStrategySection


@dataclass(frozen=True)
class Backoff:
    max_attempts: int = 5
    initial_backoff_sec: float = 0.5
    backoff_multiplier: float = 2.0
    max_backoff_sec: float = 30.0
    jitter_fraction: float = 0.2

    @classmethod
    def from_config(cls, cfg: RetryStrategySection) -> Backoff:
        return cls(**cfg.model_dump())

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based).

        Exponential from ``initial_backoff_sec``, capped at ``max_backoff_sec``, then
        spread by +/- ``jitter_fraction`` so a fleet that failed together does not retry
        together. ``rand`` returns [0, 1); tests pass a constant.
        """
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        try:
            growth = self.backoff_multiplier ** (attempt - 1)
        except OverflowError:  # a retry-forever loop hours into an outage: far past the cap anyway
            growth = math.inf
        base = min(self.initial_backoff_sec * growth, self.max_backoff_sec) if self.initial_backoff_sec else 0.0
        spread = base * self.jitter_fraction * (2.0 * rand() - 1.0)
        return max(0.0, min(self.max_backoff_sec, base + spread))

    def exhausted(self, attempt: int) -> bool:
        """True when ``attempt`` (1-based, the one that just failed) was the last allowed."""
        return attempt >= self.max_attempts


def honour_retry_after(computed: float, retry_after: str | None, cap: float) -> float:
    """The larger of our delay and the server's ``Retry-After`` (seconds form), capped."""
    if retry_after:
        try:
            return min(cap, max(computed, float(retry_after)))
        except ValueError:
            pass
    return computed
