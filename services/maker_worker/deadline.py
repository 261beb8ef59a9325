"""When a session goes sell-only and when it must liquidate (D4; docs/strategy.md section 6).

Pure: every function takes the session start in epoch ms and returns epoch ms UTC (or None).
Bad timezones or times raise :class:`ConfigError`, so a session fails at start, naming the key,
instead of trading without the deadline its owner configured.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.config import ConfigError, CountdownSection, RunParamsSection

_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
MS_THRESHOLD = 10**12  # an epoch value this large is milliseconds, below it seconds


def epoch_ms(value: float | int | str) -> int:
    """Epoch seconds or milliseconds (told apart by size) -> ms."""
    v = float(value)
    return int(v if v >= MS_THRESHOLD else v * 1000)


def zone(name: str, key: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{key}: unknown timezone {name!r} (use an IANA name like America/New_York)") from exc


def next_local_time(hhmm: str, tz: ZoneInfo, after_ms: int, key: str) -> int:
    """The first ``HH:MM[:SS]`` wall-clock time in ``tz`` at or after ``after_ms``."""
    m = _HHMM.match(hhmm)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3) or 0) > 59:
        raise ConfigError(f"{key}: {hhmm!r} is not a HH:MM time")
    after = datetime.fromtimestamp(after_ms / 1000, tz=tz)
    for days in (0, 1, 2):  # 2: a DST gap cannot skip more than one day
        day = after.date() + timedelta(days=days)
        at = datetime(day.year, day.month, day.day, int(m.group(1)), int(m.group(2)), int(m.group(3) or 0),
                      tzinfo=tz)
        if at.timestamp() * 1000 >= after_ms:
            return int(at.timestamp() * 1000)
    raise ConfigError(f"{key}: cannot place {hhmm!r}")  # pragma: no cover - unreachable


def absolute_time(text: str, tz: ZoneInfo, start_ms: int, key: str) -> int:
    """``HH:MM`` (next occurrence), ``YYYY-MM-DD HH:MM[:SS]`` or ISO-8601; no offset -> ``tz``."""
    if _HHMM.match(text):
        return next_local_time(text, tz, start_ms, key)
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{key}: {text!r} is neither HH:MM nor an ISO-8601 date and time") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    return int(at.timestamp() * 1000)


def resolve_deadline(run: RunParamsSection, market_end_ms: int | None, start_ms: int) -> int | None:
    """The deadline D: override, else the market end, else the default deadline policy, else none."""
    if run.disable_deadline_checks:
        return None
    if run.deadline_override_ts > 0:
        return epoch_ms(run.deadline_override_ts)
    if market_end_ms:
        return market_end_ms
    policy = run.deadline_policy
    if policy.enabled:
        tz = zone(policy.timezone, "run_params.deadline_policy.timezone")
        return next_local_time(policy.default_deadline_time, tz, start_ms,
                               "run_params.deadline_policy.default_deadline_time")
    return None


def resolve_sell_only_at(countdown: CountdownSection, run: RunParamsSection, deadline_ms: int | None,
                         start_ms: int) -> int | None:
    """The sell-only start S: the earlier of the absolute time and ``minutes_before_end`` before D."""
    if run.disable_deadline_checks:
        return None
    candidates: list[int] = []
    if countdown.absolute_time.strip():
        tz = zone(countdown.timezone, "maker_strategy.countdown.timezone")
        candidates.append(absolute_time(countdown.absolute_time, tz, start_ms,
                                        "maker_strategy.countdown.absolute_time"))
    if countdown.minutes_before_end > 0 and deadline_ms is not None:
        candidates.append(deadline_ms - int(countdown.minutes_before_end * 60_000))
    return min(candidates) if candidates else None


def fmt(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
