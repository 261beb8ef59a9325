"""A leader's own PnL and volume (docs/venue.md D5): the Data API v2 answers parsed as documented,
and the sim's figures from its trade feed (UTC-day flooring, marked vs realised windows, ranks)."""

from __future__ import annotations

import pytest

from services.sim_exchange.wallet_stats import standing, user_volume
from shared.venue.data_stats import BadStats, LeaderStats, parse_standing, parse_volume, volume_params

W, V = "0x" + "a" * 40, "0x" + "b" * 40
DAY = 86_400
NOW = 1_765_000_000  # 2025-12-06 05:46:40 UTC


def row(side: str, asset: str, size: float, price: float, ts: int, wallet: str = W) -> dict[str, object]:
    return {"proxyWallet": wallet, "side": side, "asset": asset, "size": size, "price": price, "timestamp": ts}


def test_standing_and_volume_answers_parse_as_documented() -> None:
    assert parse_standing({"data": {"user_id": W, "pnl": "12.5", "volume": 40, "verified": False,
                                    "rank_pnl": 3, "rank_volume": 0}}) == 12.5
    assert parse_standing({"data": None}) is None  # a documented miss
    assert parse_volume({"data": {"volume": 100, "volume_usdc": "45.5", "trade_count": 3}}) == (45.5, 3)
    bads: list[object] = [{"pnl": 1}, {"data": []}, {"data": {"pnl": "nan"}}, [], {"data": {"pnl": True}}]
    for bad in bads:
        with pytest.raises(BadStats):
            parse_standing(bad)
    with pytest.raises(BadStats):
        parse_volume({"data": None})


def test_the_volume_window_starts_days_back_and_all_sends_no_start() -> None:
    assert volume_params(W, "week", NOW) == {"user": W, "start": NOW - 7 * DAY}
    assert volume_params(W, "all", NOW) == {"user": W}


def test_stats_round_trip_through_their_redis_field() -> None:
    s = LeaderStats(-3.5, 120.0, 4, "month", 1_000)
    assert LeaderStats.from_json(s.to_json()) == s
    assert LeaderStats.from_json(None) is None
    assert LeaderStats.from_json("{not json") is None


def test_sim_user_volume_floors_both_bounds_to_their_utc_day() -> None:
    midnight = NOW // DAY * DAY
    rows = [row("BUY", "t", 10, 0.5, midnight - 1), row("SELL", "t", 4, 0.25, midnight + 5),
            row("BUY", "t", 2, 0.5, midnight + DAY + 5)]
    # a start in the middle of today counts all of today; an end today counts all of today too
    assert user_volume(rows, NOW, NOW) == {"volume": 4.0, "volume_usdc": 1.0, "trade_count": 1}
    assert user_volume(rows, 0, 0) == {"volume": 16.0, "volume_usdc": 7.0, "trade_count": 3}
    assert user_volume(rows, NOW + DAY, NOW) == {"volume": 0.0, "volume_usdc": 0.0, "trade_count": 0}  # inverted


def test_sim_standing_marks_finite_windows_and_realises_all() -> None:
    rows = {W: [row("BUY", "y", 100, 0.40, NOW - 40 * DAY), row("BUY", "y", 100, 0.40, NOW - 3600),
                row("SELL", "y", 50, 0.50, NOW - 60)],
            V: [row("BUY", "n", 10, 0.5, NOW - 60, V)]}
    mark = {"y": 0.45, "n": 0.5}.get

    def resolved(token: str) -> float | None:
        return None

    month = standing(rows, W, "month", NOW, mark, resolved)
    assert month is not None
    # in the window: -40 + 25 cash, 50 shares left worth 0.45 each: +7.5; volume 150 shares
    assert (month["pnl"], month["volume"], month["rank_pnl"], month["rank_volume"]) == (7.5, 150.0, 1, 1)
    # all time, realised only: 50 sold at 0.50 against an average cost of 0.40
    assert standing(rows, W, "all", NOW, mark, resolved)["pnl"] == pytest.approx(5.0)  # type: ignore[index]
    assert standing(rows, W, "all", NOW, mark, lambda t: 1.0)["pnl"] == pytest.approx(5.0 + 150 * 0.6)  # type: ignore[index]
    assert standing(rows, "0x" + "c" * 40, "day", NOW, mark, resolved) is None  # never traded
    quiet = standing({W: [row("BUY", "y", 1, 0.4, NOW - 9 * DAY)]}, W, "week", NOW, mark, resolved)
    assert quiet is not None
    assert (quiet["pnl"], quiet["rank_pnl"]) == (0.0, 0)
