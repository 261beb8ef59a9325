"""PnL arithmetic for the API (pure): a realised-PnL series from fills (marks: shared/marks.py).

The per-fill rules are the orchestrator's (services/orchestrator/positions.py, which the API may
not import): a BUY re-averages the cost, a SELL realises against the average cost, fees always
reduce realised PnL. The series is rebuilt from the fills the API reads, so it survives restarts
and needs no writer of its own. Like the orchestrator's matched book it counts fills still
pending settlement and leaves out those whose trade FAILED (as far as the entries read say).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.marks import as_float


@dataclass
class _Pos:
    position: float = 0.0
    avg: float = 0.0


@dataclass
class PnlSeries:
    """Cumulative realised PnL after each fill, oldest first: ``points`` = [(ts_ms, pnl)]."""

    points: list[tuple[int, float]] = field(default_factory=list)
    realized: float = 0.0
    _book: dict[str, _Pos] = field(default_factory=dict)

    def add(self, ts_ms: int, token_id: str, side: str, price: float, size: float, fee: float) -> None:
        p = self._book.setdefault(token_id, _Pos())
        if side == "BUY":
            new_pos = p.position + size
            p.avg = (p.position * p.avg + size * price) / new_pos if new_pos > 0 else 0.0
            p.position = new_pos
        else:
            sold = min(size, max(p.position, 0.0))
            self.realized += sold * (price - p.avg)
            p.position -= size
            if abs(p.position) <= 1e-9:
                p.position, p.avg = 0.0, 0.0
        self.realized -= fee
        self.points.append((ts_ms, round(self.realized, 6)))


def failed_trades(entries: list[dict[str, str]]) -> set[str]:
    """Trade ids the pf:fills entries say FAILED (a ``trade`` status, or a fill written as FAILED)."""
    return {e["trade_id"] for e in entries if e.get("status") == "FAILED" and e.get("trade_id")}


def series_from_fills(fills: list[dict[str, str]], max_points: int = 500) -> list[tuple[int, float]]:
    """Realised PnL over time from pf:fills entries (oldest first), thinned to at most ``max_points``
    (always keeping the last point). Trade status entries are not fills; a failed trade's fills never were."""
    s = PnlSeries()
    void = failed_trades(fills)
    for f in fills:
        if f.get("type", "fill") != "fill" or (f.get("trade_id") and f["trade_id"] in void):
            continue
        s.add(int(as_float(f.get("ts_init") or f.get("ts_event"))), f.get("token_id", ""), f.get("side", ""),
              as_float(f.get("price")), as_float(f.get("size")), as_float(f.get("fee")))
    pts = s.points
    if len(pts) <= max_points:
        return pts
    step = len(pts) / max_points
    thinned = [pts[int(i * step)] for i in range(max_points - 1)]
    thinned.append(pts[-1])
    return thinned
