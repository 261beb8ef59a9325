"""``polyfleet``: the operator's command line (reads Redis directly; writes go via pf:control).

Read commands: ``status`` (with ``--watch``), ``workers``, ``token ID`` (cli/token.py), ``ignored``,
``blacklist ls``, ``signals tail``, ``events tail`` (cli/tail.py), ``leaders`` (cli/leaders.py),
``redemptions`` (cli/redemptions.py, with ``--retry``).
Control commands (cli/control.py): ``stop``, ``halt``, ``resume``, ``drain``, ``unignore``,
``blacklist add/rm``, ``handled reset``. Operations (cli/ops.py): ``config check FILE``, ``doctor``,
``setup-wallet``. Also ``backtest`` and ``wipe``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import redis
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cli.connection import client as _client
from cli.control import register as register_control
from cli.leaders import register as register_leaders
from cli.ops import register as register_ops
from cli.redemptions import register as register_redemptions
from cli.tail import register as register_tail
from cli.token import pending_cell
from cli.token import register as register_token
from shared.clock import now_ms
from shared.config import redis_url
from shared.fleet import queue_worker_reads, worker_views
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


def _age(ms: str | int | None, now: int) -> str:
    if not ms:
        return ""
    sec = max(0, (now - int(ms)) // 1000)
    return f"{sec}s ago" if sec < 120 else f"{sec // 60}m ago"


def render_status(r: redis.Redis, k: Keys, limit: int = 20) -> Group:
    """Two pipelined round trips (plus a SCAN of heartbeats) however many tokens and workers."""
    now = now_ms()
    pipe = r.pipeline(transaction=False)
    for state in SHOWN_STATES:
        pipe.smembers(k.tokens_in_state(state))
    pipe.smembers(k.workers())
    for stream in (k.signals(), k.orders(), k.fills(), k.events()):
        pipe.xlen(stream)
    pipe.scard(k.gw_want(REQUESTER_ORCHESTRATOR))
    pipe.get(k.halt())
    pipe.get(k.orchestrator_leader())
    pipe.xrevrange(k.events(), count=6)
    first = pipe.execute()
    n = len(SHOWN_STATES)
    by_state, worker_ids = first[:n], sorted(first[n])
    n_signals, n_orders, n_fills, n_events, streamed, halt, leader, latest = first[n + 1:]
    shown = [(state, t) for state, members in zip(SHOWN_STATES, by_state, strict=True) for t in sorted(members)][:limit]

    pipe = r.pipeline(transaction=False)
    for _, token_id in shown:
        pipe.hgetall(k.token(token_id))
    for wid in worker_ids:
        queue_worker_reads(pipe, k, wid)
    second = pipe.execute()
    token_rows = second[:len(shown)]
    worker_info = {w.worker_id: w for w in worker_views(worker_ids, second[len(shown):])}

    tokens = Table(title="tokens", expand=True)
    for col in ("token", "market", "state", "worker", "epoch", "started", "last beat", "position", "pending",
                "avg cost", "PnL", "last event"):
        tokens.add_column(col, overflow="fold")
    for (state, token_id), h in zip(shown, token_rows, strict=True):
        market = f"{h.get('slug', '')} {h.get('outcome', '')}".strip()[:28] + f" {h.get('market_version') or 'v1'}"
        owner = h.get("owner", "")
        beat = _age(worker_info[owner].stamp("last_beat"), now) if owner in worker_info else ""
        tokens.add_row(_short(token_id), market, state, owner, h.get("epoch", ""), _ts(h.get("started_at")),
                       beat, h.get("position", ""), pending_cell(h), h.get("avg_cost", ""), h.get("realized_pnl", ""),
                       (h.get("last_event") or "")[:48])
    workers = Table(title="workers", expand=True)
    for col in ("worker", "alive", "load", "capacity", "draining", "last beat"):
        workers.add_column(col)
    for w in worker_info.values():
        workers.add_row(w.worker_id, "yes" if w.alive else "[red]no[/red]", str(w.reported_load), str(w.capacity),
                        "yes" if w.draining else "", _age(w.stamp("last_beat"), now))
    services = Table(title="services (heartbeats)", expand=True)
    for col in ("service", "instances", "last beat"):
        services.add_column(col)
    beats: dict[str, list[int]] = {}
    health_keys = list(r.scan_iter(match=k.health_pattern(), count=1000))
    for raw in r.mget(health_keys) if health_keys else []:
        if raw:
            body = json.loads(raw)
            beats.setdefault(str(body.get("service")), []).append(int(body.get("ts", 0)))
    for name, stamps in sorted(beats.items()):
        services.add_row(name, str(len(stamps)), _age(max(stamps), now))
    counts = (f"signals {n_signals} · orders {n_orders} · fills {n_fills} · events {n_events} · streamed {streamed} "
              f"tokens · halt {halt or 'off'} · leader {leader or '[red]none[/red]'}")
    events = Table(title="latest events", expand=True, show_header=False)
    for _, fields in reversed(latest):
        events.add_row(_ts(fields.get("ts_init")), fields.get("kind", ""), _short(fields.get("token_id", "")),
                       fields.get("reason", "")[:70])
    return Group(counts, services, workers, tokens, events)


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
    console.print(render_status(r, k, 0).renderables[2])


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
register_tail(app)
register_token(app)
register_ops(app)
register_leaders(app)
register_redemptions(app)

if __name__ == "__main__":
    app()
