"""``polyfleet config check FILE``, ``polyfleet doctor`` and ``polyfleet setup-wallet``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli import doctor as doctor_checks
from shared.config import ConfigError, load_secrets, load_settings
from shared.venue.environment import resolve_environment, with_rpc_secret
from shared.venue.errors import VenueError, VenueSetupError
from shared.venue.wallet_setup import setup

console = Console(highlight=False)
MARK = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}


def register(app: typer.Typer) -> None:
    config = typer.Typer(help="Configuration files.", no_args_is_help=True)
    app.add_typer(config, name="config")

    @config.command("check")
    def config_check(file: Path = typer.Argument(..., help="the YAML file to validate (PF__ overrides apply too)")) -> None:
        """Validate a config file the way every service will read it; exit 2 naming each bad key."""
        if not file.is_file():
            console.print(f"[red]{file}: no such file[/red]")
            raise typer.Exit(2)
        try:
            s = load_settings(file)
            secrets = load_secrets()
        except ConfigError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        console.print(f"[green]{file}: valid[/green]")
        targets = [t for t in s.copytrade.targets if t.enabled]
        console.print(f"  mode {s.mode}; {len(targets)} enabled target(s); screen {'on' if s.screen.enabled else 'off'}")
        console.print(f"  risk: {s.risk.max_notional_per_token} per token, {s.risk.max_notional_total} total, "
                      f"daily loss {s.risk.max_daily_loss}; at most {s.scheduler.max_concurrent_jobs} sessions")
        console.print(f"  api on {s.api.host}:{s.api.port}; metrics {'on' if s.monitoring.metrics_enabled else 'off'}; "
                      f"alerts {'on' if s.alerts.enabled else 'off'}")
        if s.mode == "live" and not secrets.private_key:
            console.print("[yellow]  warning: live mode and PF_PRIVATE_KEY is not set in this environment[/yellow]")
        if s.alerts.enabled and not secrets.alert_webhook_url:
            console.print("[yellow]  warning: alerts.enabled and PF_ALERT_WEBHOOK_URL is not set here[/yellow]")

    @app.command()
    def doctor(config_file: Path = typer.Option(None, "--config", "-c", help="default: PF_CONFIG")) -> None:
        """Preflight: config, Redis, Polymarket endpoints, clock, wallet, credentials, balance, allowances."""
        checks = doctor_checks.run(str(config_file) if config_file else None)
        table = Table("check", "", "detail", show_lines=False)
        for c in checks:
            table.add_row(c.name, MARK[c.status], c.detail)
        console.print(table)
        failed = [c for c in checks if c.status == "fail"]
        if failed:
            console.print(f"[red]{len(failed)} check(s) failed[/red]")
            raise typer.Exit(1)
        console.print("[green]ready[/green]" + (" (with warnings)" if any(c.status == "warn" for c in checks) else ""))

    @app.command("setup-wallet")
    def setup_wallet(config_file: Path = typer.Option(None, "--config", "-c", help="default: PF_CONFIG")) -> None:
        """Make the configured wallet ready to trade: create a missing deposit wallet through the
        relayer and send every approval the contracts in use lack (through the SDK). Exit 1 naming
        the fix when something cannot be fixed from here."""
        try:
            settings = load_settings(str(config_file) if config_file else None)
            secrets = load_secrets()
        except ConfigError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc

        async def run() -> None:
            env = with_rpc_secret(await resolve_environment(settings.polymarket, settings.mode), secrets)
            await setup(settings, secrets, env, console.print)

        try:
            asyncio.run(run())
        except VenueSetupError as exc:
            console.print(f"[red]{exc.problem}[/red]\n  fix: {exc.fix}")
            raise typer.Exit(1) from exc
        except (VenueError, ConnectionError) as exc:
            console.print(f"[red]the venue did not answer: {exc}[/red] (it reads before it sends: safe to run again)")
            raise typer.Exit(1) from exc
        console.print("[green]wallet ready[/green] (`polyfleet doctor` checks it all)")
