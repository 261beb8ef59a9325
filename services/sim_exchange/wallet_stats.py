"""A wallet's Data API v2 figures from the sim's trade feed (pure): ``/v2/user-volume`` and the
trader leaderboard's ``?user=`` standing (docs/venue.md D5).

``/v2/user-volume``: both bounds floored to their UTC day, the served window the whole days from
the start's to the end's (0 or absent: no bound); zeros for a wallet without trades in it, and for
an inverted window. The standing's finite windows (day / week / month) are the marked equity change
net of flows: cash from the window's trades plus what the shares they left are worth now (the mid;
1 or 0 once the market resolved). **Sim choices** where the venue says nothing: the windows roll
(the last 1 / 7 / 30 days), and positions opened before the window are not marked (the sim keeps no
past prices). ``all`` is realised only (average cost; a resolved market's shares realise at 1 or 0).
``volume`` is shares, both sides. Ranks: competition ranking (ties share a rank) among the wallets
with trades in the window; 0 = unranked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

DAY = 86_400
ROLLING_DAYS = {"day": 1, "week": 7, "month": 30}
Row = dict[str, Any]
Mark = Callable[[str], float | None]  # token -> its mark now (1/0 when resolved), None when unknown


def user_volume(rows: Iterable[Row], start: int, end: int) -> dict[str, float | int]:
    lo = start // DAY * DAY if start else 0
    hi = (end // DAY + 1) * DAY if end else 0  # the end's whole day
    got = [r for r in rows if (not lo or r["timestamp"] >= lo) and (not hi or r["timestamp"] < hi)]
    return {"volume": round(sum(float(r["size"]) for r in got), 6),
            "volume_usdc": round(sum(float(r["size"]) * float(r["price"]) for r in got), 6),
            "trade_count": len(got)}


def _marked_pnl(rows: list[Row], mark: Mark) -> float:
    cash, shares = 0.0, defaultdict[str, float](float)
    for r in rows:
        sign = 1.0 if r["side"] == "BUY" else -1.0
        cash -= sign * float(r["size"]) * float(r["price"])
        shares[r["asset"]] += sign * float(r["size"])
    return cash + sum(n * (mark(t) or 0.0) for t, n in shares.items())


def _realised_pnl(rows: list[Row], resolved: Mark) -> float:
    held: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # token -> [shares, cost]
    pnl = 0.0
    for r in sorted(rows, key=lambda r: r["timestamp"]):
        pos = held[r["asset"]]
        size, price = float(r["size"]), float(r["price"])
        if r["side"] == "BUY":
            pos[0], pos[1] = pos[0] + size, pos[1] + size * price
        elif pos[0] > 0:
            sold = min(size, pos[0])
            avg = pos[1] / pos[0]
            pnl += sold * (price - avg)
            pos[0], pos[1] = pos[0] - sold, pos[1] - sold * avg
    for token, (shares, cost) in held.items():
        payout = resolved(token)
        if payout is not None and shares > 0:
            pnl += shares * payout - cost
    return pnl


def _figures(rows: list[Row], window: str, now: int, mark: Mark, resolved: Mark) -> tuple[float, float]:
    if window == "all":
        return _realised_pnl(rows, resolved), sum(float(r["size"]) for r in rows)
    since = now - ROLLING_DAYS[window] * DAY
    inside = [r for r in rows if r["timestamp"] >= since]
    return _marked_pnl(inside, mark), sum(float(r["size"]) for r in inside)


def _rank(value: float, others: list[float]) -> int:
    return 1 + sum(1 for o in others if o > value + 1e-9)


def standing(rows_by_wallet: dict[str, list[Row]], wallet: str, window: str, now: int, mark: Mark,
             resolved: Mark) -> dict[str, Any] | None:
    """The ``data`` of ``/v2/leaderboard?user=``: None for a wallet the sim never saw trade."""
    if wallet not in rows_by_wallet:
        return None
    board = {w: _figures(rows, window, now, mark, resolved) for w, rows in rows_by_wallet.items()}
    active = {w: f for w, f in board.items() if f[1] > 0}
    pnl, volume = board[wallet]
    ranked = wallet in active
    return {"user_id": wallet, "pnl": round(pnl, 6), "volume": round(volume, 6), "user_name": None,
            "profile_image": None, "x_username": None, "verified": False,
            "rank_pnl": _rank(pnl, [f[0] for f in active.values()]) if ranked else 0,
            "rank_volume": _rank(volume, [f[1] for f in active.values()]) if ranked else 0}
