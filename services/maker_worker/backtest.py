"""Backtest: the live strategy and the paper fill model over a tick file (docs/strategy.md section 13).

    python -m services.maker_worker.backtest ticks.csv [--config FILE] [--set maker_strategy.drop_pct=0.02]
        [--tick-size 0.01] [--cash 1000] [--market-end TS] [--json]

The same :class:`VolatilityStrategy` the worker runs, driven row by row; each intent is filled by
:class:`PaperVenue` on the row that produced it (FAK), and the outcome goes back to the strategy
before the next row. Exit code 2 on a bad file or configuration, with the line or key named.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.maker_worker.deadline import epoch_ms
from services.maker_worker.paper import PaperReject, PaperVenue
from services.maker_worker.volatility import VolatilityStrategy
from shared.config import (
    ConfigError,
    ExecutionSection,
    MakerStrategySection,
    RunParamsSection,
    Settings,
    load_settings,
    yaml_load,
)
from shared.ticks import Tick

TOKEN = "backtest"
SECTIONS = ("maker_strategy", "run_params", "execution")


class TickFileError(ValueError):
    """A row of the tick file cannot be read; the text names the file and line."""


@dataclass(frozen=True)
class Row:
    ts_ms: int
    bid: float | None
    ask: float | None
    bid_size: float = 0.0
    ask_size: float = 0.0
    tick_size: float | None = None


@dataclass
class Trade:
    ts_ms: int
    side: str
    size: float
    price: float
    reason: str
    realized_pnl: float


@dataclass
class Result:
    trades: list[Trade] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    final: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        f = self.final
        return {"rows": self.rows, "trades": len(self.trades), "rejects": len(self.rejects),
                "realized_pnl": round(f.get("realized_pnl", 0.0), 6), "position": round(f.get("position", 0.0), 6),
                "avg_cost": round(f.get("avg_cost", 0.0), 6), "unrealized_pnl": round(f.get("unrealized_pnl", 0.0), 6),
                "last_bid": f.get("last_bid"), "state": f.get("state"), "sell_only": f.get("sell_only"),
                "exiting": f.get("exiting")}


# --- reading ------------------------------------------------------------------------------------


def _ts(raw: Any) -> int:
    if isinstance(raw, (int, float)) or (isinstance(raw, str) and raw.strip().replace(".", "", 1).isdigit()):
        v = float(raw)
        return int(v * 1000) if v < 1e11 else int(v)
    at = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def _price(raw: Any) -> float | None:
    if raw is None or (isinstance(raw, str) and raw.strip() in ("", "null", "None")):
        return None
    v = float(raw)
    if not 0 < v < 1:
        raise ValueError(f"price {v} is not strictly between 0 and 1")
    return v


def _size(raw: Any) -> float:
    return 0.0 if raw is None or raw == "" else float(raw)


def _row(d: dict[str, Any]) -> Row:
    if "ts" not in d or "bid" not in d or "ask" not in d:
        raise ValueError("needs ts, bid and ask")
    ts = d.get("tick_size")
    return Row(_ts(d["ts"]), _price(d["bid"]), _price(d["ask"]), _size(d.get("bid_size")), _size(d.get("ask_size")),
               float(ts) if ts not in (None, "") else None)


def read_ticks(path: Path) -> Iterator[Row]:
    """Rows of a CSV (with a header) or JSONL tick file, checked to be in time order."""
    text = path.read_text()
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    jsonl = first.lstrip().startswith("{")
    numbered: Iterator[tuple[int, dict[str, Any]]]
    if jsonl:
        numbered = ((i, _json_line(path, i, ln)) for i, ln in enumerate(text.splitlines(), 1) if ln.strip())
    else:
        numbered = ((i + 1, dict(d)) for i, d in enumerate(csv.DictReader(text.splitlines()), 1))
    last = -1
    for line, data in numbered:
        try:
            row = _row(data)
        except (ValueError, TypeError) as exc:
            raise TickFileError(f"{path}:{line}: {exc}") from exc
        if row.ts_ms < last:
            raise TickFileError(f"{path}:{line}: ts goes backwards")
        last = row.ts_ms
        yield row


def _json_line(path: Path, line: int, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TickFileError(f"{path}:{line}: not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise TickFileError(f"{path}:{line}: not a JSON object")
    return data


# --- running ------------------------------------------------------------------------------------


def run(rows: Iterator[Row] | list[Row], params: MakerStrategySection, run_params: RunParamsSection,
        execution: ExecutionSection, tick_size: float = 0.01, cash: float | None = None,
        market_end_ms: int | None = None) -> Result:
    venue = PaperVenue(cash)
    result = Result()
    strategy: VolatilityStrategy | None = None
    for i, row in enumerate(rows, 1):
        if strategy is None:
            strategy = VolatilityStrategy(params, run_params, execution, row.ts_ms, market_end_ms)
        tick_size = row.tick_size or tick_size
        tick = Tick(TOKEN, i, row.bid, row.ask, row.bid_size, row.ask_size, None, tick_size, row.ts_ms, row.ts_ms)
        venue.observe(tick, row.ts_ms)
        result.rows = i
        intent = strategy.on_tick(tick, row.ts_ms) or strategy.on_timer(row.ts_ms)
        if intent is None:
            continue
        try:
            _, fills = venue.place(TOKEN, intent.side, intent.price, intent.size, tick_size, "FAK", row.ts_ms)
        except PaperReject as exc:
            strategy.on_reject(intent.side, str(exc), row.ts_ms)
            result.rejects.append({"ts_ms": row.ts_ms, "side": intent.side, "price": intent.price,
                                   "size": intent.size, "error": str(exc)})
            continue
        size = sum(f.size for f in fills)
        avg = sum(f.size * f.price for f in fills) / size
        strategy.on_fill(intent.side, size, avg, row.ts_ms, final=True)
        result.trades.append(Trade(row.ts_ms, intent.side, round(size, 6), round(avg, 6), intent.reason,
                                   round(strategy.realized_pnl, 6)))
    if strategy is not None:
        result.final = strategy.status()
    return result


def _sections(config: Path | None, sets: list[str]) -> tuple[MakerStrategySection, RunParamsSection, ExecutionSection]:
    settings = load_settings(config) if config is not None else Settings()
    data = {name: getattr(settings, name).model_dump() for name in SECTIONS}
    for item in sets:
        key, sep, raw = item.partition("=")
        path = key.strip().split(".")
        if not sep or path[0] not in SECTIONS or len(path) < 2:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION one of {', '.join(SECTIONS)}")
        node = data[path[0]]
        for part in path[1:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml_load(raw)
    try:
        return (MakerStrategySection.model_validate(data["maker_strategy"]),
                RunParamsSection.model_validate(data["run_params"]),
                ExecutionSection.model_validate(data["execution"]))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"invalid parameter {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from exc


def _fmt_ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def report(result: Result) -> str:
    lines = [f"{'time (UTC)':19}  {'side':4}  {'size':>8}  {'price':>7}  {'realised':>9}  reason"]
    for t in result.trades:
        lines.append(f"{_fmt_ts(t.ts_ms):19}  {t.side:4}  {t.size:8.2f}  {t.price:7.4f}  {t.realized_pnl:9.4f}  {t.reason}")
    for rj in result.rejects:
        lines.append(f"{_fmt_ts(rj['ts_ms']):19}  {rj['side']:4}  {rj['size']:8.2f}  {rj['price']:7.4f}  "
                     f"{'rejected':>9}  {rj['error']}")
    s = result.summary()
    lines += [
        "",
        f"rows {s['rows']}  trades {s['trades']}  rejects {s['rejects']}",
        f"realised PnL    {s['realized_pnl']:.4f}",
        f"position        {s['position']:.2f} @ avg cost {s['avg_cost']:.4f}",
        f"unrealised PnL  {s['unrealized_pnl']:.4f} (at last bid {s['last_bid']})",
        f"final state     {s['state']}{' sell-only' if s['sell_only'] else ''}{' exiting' if s['exiting'] else ''}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="backtest", description="Run the volatility strategy over a tick file.")
    ap.add_argument("file", type=Path, help="CSV (header: ts,bid,ask[,bid_size,ask_size,tick_size]) or JSONL")
    ap.add_argument("--config", type=Path, default=None, help="a polyfleet YAML (maker_strategy, run_params, execution)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--tick-size", type=float, default=0.01)
    ap.add_argument("--cash", type=float, default=None, help="paper cash (default unlimited)")
    ap.add_argument("--market-end", default=None, help="the market end (epoch s/ms) for the countdown")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        params, run_params, execution = _sections(args.config, args.sets)
        end = epoch_ms(args.market_end) if args.market_end else None
        result = run(read_ticks(args.file), params, run_params, execution, args.tick_size, args.cash, end)
    except (ConfigError, TickFileError, OSError, ValueError) as exc:
        sys.stderr.write(f"backtest: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps({"trades": [asdict(t) for t in result.trades], "rejects": result.rejects,
                                     "summary": result.summary()}) + "\n")
    else:
        sys.stdout.write(report(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
