"""Per-signer rate limits (pure, clock passed in; docs/venue.md R2).

Each signer (the address of the API credentials) has an order bucket and a cancel bucket, token
buckets of ``burst`` tokens refilled at ``rate`` a second. ``POST /order`` costs 1 order token,
``POST /orders`` one per order, ``DELETE /order`` 1 cancel token, ``DELETE /orders`` one per id,
``/cancel-all`` and ``/cancel-market-orders`` 1 + the orders they cancel; a batch is all or
nothing. Every CLOB answer to a known signer carries the bucket's state in the headers the
official SDK reads: ``Poly-RateLimit-Remaining`` (tokens left, negative in warning mode),
``-Reset`` (Unix seconds when the bucket is full again), ``-Tier``, ``-Warning``. Mode
``enforce`` refuses a charge the bucket cannot pay (429 with ``Retry-After``: when it could);
``warn`` lets it through and goes negative, with ``Warning: true``; ``off`` sends no headers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ORDERS, CANCELS = "orders", "cancels"


@dataclass
class Bucket:
    burst: float
    rate: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def full_at(self) -> float:
        return self.at + max(self.burst - self.tokens, 0.0) / self.rate


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds, when refused
    headers: dict[str, str]


class SignerLimits:
    def __init__(self, mode: str, tier: str, order_rate: float, order_burst: float, cancel_rate: float,
                 cancel_burst: float) -> None:
        self.mode = mode
        self.tier = tier
        self.shape = {ORDERS: (order_burst, order_rate), CANCELS: (cancel_burst, cancel_rate)}
        self.buckets: dict[tuple[str, str], Bucket] = {}

    def clear(self) -> None:
        self.buckets.clear()

    def _bucket(self, signer: str, kind: str, now: float) -> Bucket:
        b = self.buckets.get((signer, kind))
        if b is None:
            burst, rate = self.shape[kind]
            b = self.buckets[(signer, kind)] = Bucket(burst, rate, burst, now)
        b.refill(now)
        return b

    def _headers(self, b: Bucket) -> dict[str, str]:
        if self.mode == "off":
            return {}
        return {"Poly-RateLimit-Remaining": f"{math.floor(b.tokens)}", "Poly-RateLimit-Reset": f"{b.full_at():.0f}",
                "Poly-RateLimit-Tier": self.tier,
                "Poly-RateLimit-Warning": "true" if self.mode == "warn" and b.tokens < 0 else "false"}

    def charge(self, signer: str, kind: str, cost: float, now: float) -> Verdict:
        b = self._bucket(signer, kind, now)
        if self.mode == "enforce" and b.tokens < cost:
            wait = math.ceil((cost - b.tokens) / b.rate)
            return Verdict(False, max(wait, 1), self._headers(b))
        if self.mode != "off":
            b.tokens -= cost
        return Verdict(True, 0, self._headers(b))

    def peek(self, signer: str, kind: str, now: float) -> dict[str, str]:
        return self._headers(self._bucket(signer, kind, now))
