"""``polyfleet leaders``: the leader scorecard (docs/copytrading.md "Scorecard"), as a table or JSON.

``polyfleet leaders pause|resume ADDRESS`` are control requests (docs/copytrading.md "Auto-demotion");
``polyfleet leaders backtest ADDRESS --days N`` is the what-if (cli/backtest.py).
The reads and the arithmetic are shared with ``GET /api/leaders`` (shared/scorecard_reads.py)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import typer
from rich.console import Console
from rich.table import Table

from cli.backtest import register as register_backtest
from cli.connection import client
from cli.control import REASON, TIMEOUT, WAIT, send
from shared.config import ConfigError, load_settings, redis_url
from shared.keys import keys_from_env
from shared.scorecard_reads import read_leaders

console = Console(highlight=False)
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _short(account: str) -> str:
    return f"{account[:6]}…{account[-4:]}" if len(account) > 12 else account


def _spread(s: dict[str, Any], unit: str) -> str:
    return f"{s['p50']:g} / {s['max']:g} {unit}" if s["n"] else "—"


def _money(x: float) -> str:
    color = "green" if x > 0 else "red" if x < 0 else "white"
    return f"[{color}]{x:+.2f}[/{color}]"


def _flags(f: dict[str, Any]) -> str:
    out = []
    if f["market_maker"]:
        out.append(f"[yellow]market maker[/yellow] ({f['two_sided_trades']} two-sided)")
    if f["high_frequency"]:
        out.append(f"[yellow]high frequency[/yellow] ({f['busiest_hour']}/h)")
    return ", ".join(out) or "copyable"


def table(report: dict[str, Any]) -> Table:
    t = Table("leader", "followed", "signals", "its volume / value", "its venue PnL / volume", "copies",
              "skipped (why)", "realised", "unrealised", "slippage p50/max", "delay p50/max", "flags", "paused",
              title="leaders")
    for c in report["leaders"]:
        why = "; ".join(f"{n} {r}" for r, n in list(c["skip_reasons"].items())[:3])
        t.add_row(_short(c["account"]), "yes" if c["followed"] else "no",
                  " ".join(f"{src} {n}" for src, n in sorted(c["signals"].items())) or "0",
                  f"${c['leader_volume_usd']:,.0f} / " + ("—" if c["leader_value_usd"] is None
                                                          else f"${c['leader_value_usd']:,.0f}"),
                  _venue(c.get("venue_stats")), str(c["copies"]), f"{c['skipped']}" + (f" ({why})" if why else ""),
                  _money(c["realized_pnl"]), _money(c["unrealized_pnl"]), _spread(c["slippage_bps"], "bps"),
                  "; ".join(f"{src} {_spread(s, 'ms')}" for src, s in c["delay_ms"].items()) or "—",
                  _flags(c["flags"]), _paused(c.get("paused")))
    return t


def _venue(v: dict[str, Any] | None) -> str:
    """The leader's own PnL and volume as the venue reports them (Data API, copytrade.leader_stats_window)."""
    if not v:
        return "—"
    pnl = "—" if v["pnl_usd"] is None else _money(v["pnl_usd"])
    return f"{pnl} / ${v['volume_usd'] or 0:,.0f} ({v['trades']} trades, {v['window']})"


def _paused(p: dict[str, Any] | None) -> str:
    return f"[red]paused[/red]: {p['reason']} (by {p['by'] or '?'})" if p else "no"


def _address(account: str) -> str:
    """A wallet address, lower case; anything else exits 2 before a request is written."""
    if not ADDRESS.fullmatch(account):
        console.print(f"[red]{account!r} is not a 0x-prefixed 40-hex-digit address[/red]")
        raise typer.Exit(2)
    return account.lower()


def register(app: typer.Typer) -> None:
    leaders_app = typer.Typer(help="The leader scorecard; pause and resume a followed wallet; backtest any wallet.",
                              invoke_without_command=True, no_args_is_help=False)
    app.add_typer(leaders_app, name="leaders")

    @leaders_app.callback()
    def leaders(ctx: typer.Context,
                as_json: bool = typer.Option(False, "--json", help="the same JSON as GET /api/leaders"),
                config_file: Path = typer.Option(None, "--config", "-c", help="default: PF_CONFIG")) -> None:
        """Every followed wallet's scorecard: signals, its own PnL and volume as the venue reports them
        (Data API, over copytrade.leader_stats_window), copies and skips, PnL of its copies, slippage,
        detection delay, copyability flags, paused or not (the newest entries of the streams:
        copytrade.scorecard)."""
        if ctx.invoked_subcommand is not None:
            return
        show(as_json, config_file)

    @leaders_app.command("pause")
    def pause(account: str = typer.Argument(..., help="the wallet address"), reason: str = REASON,
              wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Stop copying a leader's BUYs (its SELLs still exit our copies) until `leaders resume`."""
        address = _address(account)
        followed = _followed()
        if followed is not None and address not in followed:  # a typo, or a wallet paused ahead of following it
            console.print(f"[yellow]{address} is not a followed wallet (copytrade.targets: "
                          f"{', '.join(sorted(followed)) or 'none'}); paused all the same, so it is not copied "
                          "if it is added[/yellow]")
        send("leader_pause", address, reason or "paused by operator", wait=wait, timeout=timeout)

    @leaders_app.command("resume")
    def resume(account: str = typer.Argument(..., help="a paused wallet's address"), reason: str = REASON,
               wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Copy a paused leader again (paused by auto-demotion or by `leaders pause`)."""
        address = _address(account)
        r, k = client(), keys_from_env()
        if not r.hexists(k.leaders_paused(), address):
            console.print(f"[red]{address} is not paused[/red]; nothing done (paused: "
                          f"{', '.join(sorted(r.hkeys(k.leaders_paused()))) or 'none'})")
            raise typer.Exit(2)
        send("leader_resume", address, reason, wait=wait, timeout=timeout)

    register_backtest(leaders_app)


def _followed() -> set[str] | None:
    """The followed wallets as the configuration names them; None when it cannot be read here."""
    try:
        settings = load_settings(None)
    except ConfigError:
        return None
    return {t.account.lower() for t in settings.copytrade.targets}


def show(as_json: bool, config_file: Path | None) -> None:
    try:
        settings = load_settings(str(config_file) if config_file else None)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    async def read() -> dict[str, Any]:
        r = aioredis.Redis.from_url(redis_url(), decode_responses=True, socket_timeout=3)
        try:
            return await read_leaders(r, keys_from_env(), settings)
        finally:
            await r.aclose()

    try:
        report = asyncio.run(read())
    except aioredis.RedisError as exc:
        console.print(f"[red]Redis at {redis_url()} is unreachable: {exc}[/red] (set PF_REDIS_URL)")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(report, separators=(",", ":")))  # noqa: T201
        return
    if not report["leaders"]:
        console.print("no leaders: no copytrade.targets and no followed wallet's signals")
        return
    console.print(table(report))
    w = report["window"]
    console.print(f"read: {w['signals']} signal(s), {w['decisions']} decision(s), {w['fills']} fill(s), "
                  f"{w['tokens']} copied token(s)")
