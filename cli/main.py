"""``polyfleet``: the operator's command line (reads Redis directly; writes go via pf:control).

Read commands: ``status`` (with ``--watch``), ``workers``, ``ignored``, ``blacklist ls``. Control
commands (cli/control.py): ``stop``, ``halt``, ``resume``, ``drain``, ``unignore``, ``blacklist
add/rm``, ``handled reset``. Also ``backtest`` and ``wipe``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cli.connection import client as _client
from cli.control import register as register_control
from shared.config import redis_url
from shared.keys import REQUESTER_ORCHESTRATOR, Keys, keys_from_env

app = typer.Typer(help="Operate a polyfleet deployment.", no_args_is_help=True)
console = Console()
SHOWN_STATES = ("starting", "running", "exiting", "queued", "done", "rejected", "error")


def _ts(ms: str | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%H:%M:%S")


def _short(token: str) -> str:
    return token if len(token) <= 14 else f"{token[:6]}…{token[-6:]}"


def render_status(r: redis.Redis, k: Keys, limit: int = 20) -> Group:
    tokens = Table(title="tokens", expand=True)
    for col in ("token", "market", "state", "worker", "epoch", "started", "position", "avg cost",
                "PnL", "last event"):
        tokens.add_column(col, overflow="fold")
    rows = 0
    for state in SHOWN_STATES:
        for token_id in sorted(r.smembers(k.tokens_in_state(state))):
            if rows >= limit:
                break
            h = r.hgetall(k.token(token_id))
            market = f"{h.get('slug', '')} {h.get('outcome', '')}".strip()
            tokens.add_row(_short(token_id), market[:32], state, h.get("owner", ""), h.get("epoch", ""),
                           _ts(h.get("started_at")), h.get("position", ""), h.get("avg_cost", ""),
                           h.get("realized_pnl", ""), (h.get("last_event") or "")[:48])
            rows += 1
    workers = Table(title="workers", expand=True)
    for col in ("worker", "alive", "load", "capacity", "last beat"):
        workers.add_column(col)
    for wid in sorted(r.smembers(k.workers())):
        h = r.hgetall(k.worker(wid))
        workers.add_row(wid, "yes" if r.exists(k.worker_lease(wid)) else "[red]no[/red]", h.get("load", ""),
                        h.get("capacity", ""), _ts(h.get("last_beat")))
    counts = (f"signals {r.xlen(k.signals())} · orders {r.xlen(k.orders())} · fills {r.xlen(k.fills())} · "
              f"events {r.xlen(k.events())} · streamed {r.scard(k.gw_want(REQUESTER_ORCHESTRATOR))} tokens · halt "
              f"{r.get(k.halt()) or 'off'}")
    events = Table(title="latest events", expand=True, show_header=False)
    for _, fields in reversed(r.xrevrange(k.events(), count=6)):
        events.add_row(_ts(fields.get("ts_init")), fields.get("kind", ""), _short(fields.get("token_id", "")),
                       fields.get("reason", "")[:70])
    return Group(counts, workers, tokens, events)


@app.command()
def status(watch: bool = typer.Option(False, "--watch", "-w", help="refresh until Ctrl-C"),
           interval: float = typer.Option(2.0, help="seconds between refreshes with --watch"),
           limit: int = typer.Option(20, help="at most this many tokens"),
           duration: float = typer.Option(0.0, help="with --watch: stop after this many seconds (0 = never)")) -> None:
    """Tokens, workers and the latest events."""
    r, k = _client(), keys_from_env()
    if not watch:
        console.print(render_status(r, k, limit))
        return
    with Live(render_status(r, k, limit), console=console, refresh_per_second=1, screen=False) as live:
        deadline = time.monotonic() + duration if duration > 0 else float("inf")
        try:
            while time.monotonic() < deadline:
                time.sleep(interval)
                try:
                    live.update(render_status(r, k, limit))
                except redis.RedisError as exc:
                    live.update(f"[red]Redis unreachable: {exc}[/red]")
        except KeyboardInterrupt:
            pass


@app.command()
def workers() -> None:
    """Registered workers, their lease and load."""
    r, k = _client(), keys_from_env()
    console.print(render_status(r, k, 0).renderables[1])


@app.command()
def wipe(yes: bool = typer.Option(False, "--yes", help="really delete")) -> None:
    """Delete every key of this namespace (PF_NAMESPACE) — for demos and tests, never production."""
    r, k = _client(), keys_from_env()
    if not yes:
        console.print(f"this deletes every {k.all_pattern()} key at {redis_url()}; add --yes")
        raise typer.Exit(1)
    n = 0
    for key in r.scan_iter(match=k.all_pattern(), count=1000):
        n += r.delete(key)
    console.print(f"deleted {n} keys")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def backtest(ctx: typer.Context) -> None:
    """Run the volatility strategy and the paper fill model over a tick file (docs/strategy.md).

    Takes the arguments of ``python -m services.maker_worker.backtest`` (``polyfleet backtest --help``)."""
    from services.maker_worker.backtest import main as run_backtest

    raise typer.Exit(run_backtest(list(ctx.args)))


register_control(app)

if __name__ == "__main__":
    app()
