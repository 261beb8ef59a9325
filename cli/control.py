"""Operator control commands: each writes one ControlRequest to ``pf:control`` (the orchestrator
is the only writer of lifecycle, blacklist and kill switch) and, unless ``--no-wait``, waits until
the orchestrator has applied it.

Exit codes: 0 applied (or written, with --no-wait), 2 Redis unreachable or bad input,
3 written but not applied within --timeout (is the orchestrator running? ``polyfleet status``).
"""

from __future__ import annotations

import time

import redis
import typer
from rich.console import Console
from rich.table import Table

from cli.connection import client
from shared.clock import now_ms
from shared.control import control_request, delivered
from shared.keys import GROUP_ORCHESTRATOR, STREAM_MAXLEN, Keys, keys_from_env

console = Console()
EXIT_NOT_APPLIED = 3

WAIT = typer.Option(True, "--wait/--no-wait", help="wait until the orchestrator applied it")
TIMEOUT = typer.Option(10.0, help="seconds to wait with --wait")
REASON = typer.Option("", "--reason", "-r", help="why (recorded in the audit event)")


def send(action: str, target: str = "", reason: str = "", force: bool = False, expires_at: int = 0,
         wait: bool = True, timeout: float = 10.0) -> None:
    r, k = client(), keys_from_env()
    req = control_request(action, target, reason, force, expires_at, requester="cli")
    entry_id = str(r.xadd(k.control(), req.encode(), maxlen=STREAM_MAXLEN["control"],  # type: ignore[arg-type]
                          approximate=True))
    what = f"{action} {target}".strip()
    if not wait:
        console.print(f"requested: {what} (control entry {entry_id})")
        return
    if applied(r, k, entry_id, timeout):
        console.print(f"[green]applied[/green]: {what}")
        return
    console.print(f"[yellow]requested but not applied within {timeout:.0f}s[/yellow]: {what} "
                  f"(control entry {entry_id}); is the orchestrator running? see `polyfleet status`")
    raise typer.Exit(EXIT_NOT_APPLIED)


def applied(r: redis.Redis, k: Keys, entry_id: str, timeout: float) -> bool:
    """True once the orchestrator group has read the entry and acknowledged it (its effects
    commit with the ack, so acknowledged = applied)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            groups = r.xinfo_groups(k.control())
        except redis.ResponseError:
            groups = []
        if delivered(groups, entry_id):
            pending = r.xpending_range(k.control(), GROUP_ORCHESTRATOR, min=entry_id, max=entry_id, count=1)
            if not pending:
                return True
        time.sleep(0.1)
    return False


def register(app: typer.Typer) -> None:
    """Add the control commands to the ``polyfleet`` app."""

    @app.command()
    def stop(token: str, force: bool = typer.Option(False, "--force", help="cancel orders and stop now, keeping "
                                                                          "the position (default: exit = liquidate)"),
             reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Stop one token: exit (liquidate) it, or with --force cancel its orders and keep the position."""
        send("stop_token", token, reason, force=force, wait=wait, timeout=timeout)

    @app.command()
    def halt(reduce_only: bool = typer.Option(False, "--reduce-only", help="no new sessions; exits still run"),
             reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Kill switch: stop every session now (or, with --reduce-only, start nothing new)."""
        send("halt", "reduce_only" if reduce_only else "halt", reason, wait=wait, timeout=timeout)

    @app.command()
    def resume(reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Lift the kill switch: halted tokens restart where they were."""
        send("resume", "", reason, wait=wait, timeout=timeout)

    @app.command()
    def drain(worker: str, undo: bool = typer.Option(False, "--undo", help="take new tokens again"),
              reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Drain a worker: it takes no new tokens and hands its tokens to others."""
        send("undrain_worker" if undo else "drain_worker", worker, reason, wait=wait, timeout=timeout)

    @app.command()
    def unignore(token: str, reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Take a token off the ignored list."""
        send("unignore", token, reason, wait=wait, timeout=timeout)

    blacklist = typer.Typer(help="Runtime blacklist (config entries are in risk.blacklist_token_keys).",
                            no_args_is_help=True)
    app.add_typer(blacklist, name="blacklist")

    @blacklist.command("add")
    def blacklist_add(key: str = typer.Argument(..., help="token id, condition id, slug, source account, "
                                                           "kw:<keyword> or re:<regex>"),
                      reason: str = REASON, ttl: float = typer.Option(0.0, help="expire after seconds (0 = never)"),
                      wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Never trade what matches KEY."""
        expires = now_ms() + int(ttl * 1000) if ttl > 0 else 0
        send("blacklist_add", key, reason, expires_at=expires, wait=wait, timeout=timeout)

    @blacklist.command("rm")
    def blacklist_rm(key: str, reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Remove a runtime blacklist entry."""
        send("blacklist_remove", key, reason, wait=wait, timeout=timeout)

    @blacklist.command("ls")
    def blacklist_ls() -> None:
        """Runtime entries with reason and expiry."""
        import json

        r, k = client(), keys_from_env()
        table = Table("key", "reason", "expires")
        for key, raw in sorted(r.hgetall(k.blacklist()).items()):
            try:
                spec = json.loads(raw)
            except ValueError:
                spec = {"reason": raw}
            exp = int(spec.get("expires_at", 0) or 0)
            table.add_row(key, str(spec.get("reason", "")), _when(exp) if exp else "never")
        console.print(table)

    handled = typer.Typer(help="Tokens already handled (C6): a repeated BUY does not restart them.",
                          no_args_is_help=True)
    app.add_typer(handled, name="handled")

    @handled.command("reset")
    def handled_reset(token: str = typer.Argument("", help="one token; omit with --all for every token"),
                      all_tokens: bool = typer.Option(False, "--all", help="forget every handled token"),
                      reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Forget that a token (or, with --all, every token) was handled."""
        if not token and not all_tokens:
            console.print("[red]name a token, or pass --all[/red]")
            raise typer.Exit(2)
        send("handled_reset", token, reason, wait=wait, timeout=timeout)

    @app.command()
    def ignored() -> None:
        """Ignored tokens with their reason and expiry."""
        r, k = client(), keys_from_env()
        table = Table("token", "reason", "until")
        why = r.hgetall(k.ignored_why())
        for token, until in r.zrange(k.ignored(), 0, -1, withscores=True):
            table.add_row(token, why.get(token, ""), _when(int(until)))
        console.print(table)


def _when(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
