"""A wallet's own PnL and volume from the Data API v2 (docs/venue.md D5), for a leader's scorecard:
its PnL is the trader leaderboard's ``?user=`` standing, its volume ``/v2/user-volume``. Pure
parsers and the request parameters; the collector reads them (services/signal_collector/leader_stats.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from shared.input_errors import InputError
from shared.venue.data_api import finite_number

WINDOW_DAYS = {"day": 1, "week": 7, "month": 30, "all": 0}  # the volume read's start, days back (0: none)
STANDING_PATH = "/v2/leaderboard"
VOLUME_PATH = "/v2/user-volume"


class BadStats(InputError):
    """A Data API answer that is not the documented envelope."""


@dataclass(frozen=True)
class LeaderStats:
    """What the venue says of a wallet over ``window``; None where it said nothing (no standing)."""

    pnl_usd: float | None  # the leaderboard's pnl: marked equity change net of flows (``all``: realised)
    volume_usd: float | None  # volume_usdc: both sides, in $
    trades: int | None  # trade_count over the same window
    window: str
    read_at: int  # ms

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> LeaderStats | None:
        """A ``pf:leader:stats`` field; None when absent or unreadable (a card then shows nothing)."""
        if not raw:
            return None
        try:
            d = json.loads(raw)
            return cls(_opt(d.get("pnl_usd")), _opt(d.get("volume_usd")),
                       None if d.get("trades") is None else int(d["trades"]), str(d["window"]), int(d["read_at"]))
        except (ValueError, TypeError, KeyError):
            return None


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _num(value: Any, what: str) -> float:
    return finite_number(value, what, BadStats)


def _data(body: Any) -> Any:
    if not isinstance(body, dict) or "data" not in body:
        raise BadStats(f"answer has no data envelope: {str(body)[:80]!r}")
    return body["data"]


def standing_params(user: str, window: str) -> dict[str, str]:
    return {"user": user, "time_period": window}


def volume_params(user: str, window: str, now_s: int) -> dict[str, str | int]:
    """``start`` is ``WINDOW_DAYS`` back (the venue floors it to its UTC day); ``all`` sends none."""
    days = WINDOW_DAYS[window]
    return {"user": user, "start": now_s - days * 86_400} if days else {"user": user}


def parse_standing(body: Any) -> float | None:
    """The ``pnl`` of a ``/v2/leaderboard?user=`` answer; None for ``{"data": null}`` (a documented
    miss: the venue has no standing for the wallet)."""
    data = _data(body)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise BadStats(f"standing is not an object: {str(data)[:80]!r}")
    return _num(data.get("pnl"), "pnl")


def parse_volume(body: Any) -> tuple[float, int]:
    """(volume_usdc, trade_count) of a ``/v2/user-volume`` answer (zeros for a wallet that did not trade)."""
    data = _data(body)
    if not isinstance(data, dict):
        raise BadStats(f"volume is not an object: {str(data)[:80]!r}")
    return _num(data.get("volume_usdc"), "volume_usdc"), int(_num(data.get("trade_count"), "trade_count"))
