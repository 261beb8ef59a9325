"""Injected faults: HTTP 429 bursts and orders whose HTTP response stalls after they are stored."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ORDER_TIMEOUT_DELAY = 15.0


@dataclass
class Http429:
    remaining: int
    retry_after: float
    path_prefix: str = ""
    status: int = 429  # 425 / 500 / 503 exercise the same back-off path


@dataclass
class Faults:
    http_429: list[Http429] = field(default_factory=list)
    order_timeouts: int = 0
    order_timeout_delay: float = DEFAULT_ORDER_TIMEOUT_DELAY

    def clear(self) -> None:
        self.http_429.clear()
        self.order_timeouts = 0

    def take_429(self, path: str) -> Http429 | None:
        """The armed 429 fault matching ``path`` (using one of its count), if any."""
        if path.startswith("/_sim"):
            return None
        for fault in self.http_429:
            if fault.remaining > 0 and path.startswith(fault.path_prefix or "/"):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.http_429.remove(fault)
                return fault
        return None

    def take_order_timeout(self) -> float | None:
        """The delay to stall this order's response for, if the fault is armed."""
        if self.order_timeouts <= 0:
            return None
        self.order_timeouts -= 1
        return self.order_timeout_delay
