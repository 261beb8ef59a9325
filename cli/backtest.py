"""``polyfleet leaders backtest ADDRESS --days N``: what copying a wallet would have done
(docs/copytrading.md "Backtest"). The reads, the replay and the figures are shared with
``GET /api/leaders/{address}/backtest`` (shared/backtest_reads.py); ``--json`` prints the API's JSON.

Exit codes: 0 a result; 2 bad input (address, days, configuration); 3 no history (the wallet made no
trade in the window); 4 the venue is unreachable."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from shared.backtest_reads import BadRequest, NoHistory, VenueDown, run_backtest, venue
from shared.config import ConfigError, Settings, load_settings

console = Console(highlight=False)
EXIT_CODES = {BadRequest: 2, NoHistory: 3, VenueDown: 4}


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _money(x: float) -> str:
    color = "green" if x > 0 else "red" if x < 0 else "white"
    return f"[{color}]{x:+,.2f}[/{color}]"


def summary(res: dict[str, Any]) -> Table:
    t = Table("figure", "value", title=f"backtest of {res['account']}: the last {res['days']} day(s)", show_header=False)
    tr, ex = res["trades"], res["exits"]
    rate = "—" if res["win_rate"] is None else f"{res['win_rate']:.0%} ({res['wins']} won, {res['losses']} lost)"
    rows = [
        ("window", f"{_when(res['window']['start'])} → {_when(res['window']['end'])} UTC"
                   + (" [yellow](truncated: only the newest copytrade.backtest.max_trades trades)[/yellow]"
                      if res["truncated"] else "")),
        ("trades replayed", f"{tr['replayed']} ({tr['buys']} buys, {tr['sells']} sells; {tr['below_min_size']} below "
                            "min_size)"),
        ("copies made", str(res["copies"])),
        ("copies skipped", str(res["skipped"])),
        ("exits", f"{ex['full']} full, {ex['partial']} partial; {ex['sells_without_a_copy']} leader sells without "
                  "a copy"),
        ("invested", f"${res['invested_usd']:,.2f}"),
        ("realised PnL", _money(res["realized_pnl"])),
        ("unrealised PnL", _money(res["unrealized_pnl"]) + f" ({res['open_copies']} open"
                           + (f", {res['unmarked']} without a mark" if res["unmarked"] else "") + ")"),
        ("total PnL", _money(res["total_pnl"])),
        ("win rate", rate),
        ("max drawdown", f"${res['max_drawdown_usd']:,.2f}"),
    ]
    for name, value in rows:
        t.add_row(name, value)
    return t


def _run(settings: Settings, account: str, days: int) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        env = await venue(settings)
        async with httpx.AsyncClient(timeout=10.0) as http:
            return await run_backtest(settings, env, http, account, days)
    return asyncio.run(go())


def register(leaders_app: typer.Typer) -> None:
    @leaders_app.command("backtest")
    def backtest(account: str = typer.Argument(..., help="any wallet address, followed or not"),
                 days: int = typer.Option(7, "--days", help="the window: the last N days (1 to "
                                          "copytrade.backtest.max_days)"),
                 as_json: bool = typer.Option(False, "--json", help="the same JSON as GET /api/leaders/{address}/backtest"),
                 config_file: Path = typer.Option(None, "--config", "-c", help="default: PF_CONFIG")) -> None:
        """What copying a wallet would have made: its trades of the last N days (Data API /trades)
        replayed through today's copy rules for it (sizing, guard, exits, budget). Fill model
        (copytrade.backtest): each copy acts delay_sec after the leader's trade at the last price the
        leader's trades show by then, slippage_bps worse, no fees; open copies are marked at the current
        mid, or 1/0 once their market resolved. Prints copies made and skipped (why), invested, realised
        and unrealised PnL, win rate, max drawdown. Exit 3: no history in the window; 4: venue
        unreachable; 2: bad input."""
        try:
            settings = load_settings(str(config_file) if config_file else None)
            res = _run(settings, account, days)
        except ConfigError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        except (BadRequest, NoHistory, VenueDown) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(EXIT_CODES[type(exc)]) from exc
        if as_json:
            print(json.dumps(res, separators=(",", ":")))  # noqa: T201
            return
        console.print(summary(res))
        if res["skip_reasons"]:
            console.print("skipped: " + "; ".join(f"{n} {why}" for why, n in res["skip_reasons"].items()))
        console.print(f"[dim]fill model: {res['model']['text']}[/dim]")
