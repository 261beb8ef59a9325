"""``polyfleet signals tail`` and ``polyfleet events tail``: the latest entries of a stream, then
(with ``--follow``) new ones as they arrive (plain XREAD BLOCK: reading changes nothing)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import redis
import typer
from rich.console import Console
from rich.markup import escape

from cli.connection import client
from shared.keys import keys_from_env

console = Console(highlight=False)

Filter = Callable[[dict[str, str]], bool]
Format = Callable[[str, dict[str, str]], str]


def _ts(fields: dict[str, str], entry_id: str) -> str:
    ms = int(fields.get("ts_init") or entry_id.split("-")[0])
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000))


def _short(token: str) -> str:
    return token if len(token) <= 14 else f"{token[:6]}…{token[-6:]}"


def format_signal(entry_id: str, f: dict[str, str]) -> str:
    colour = "green" if f.get("side") == "BUY" else "red"
    who = f.get("account", "")[:10] or f.get("source", "")
    return (f"{_ts(f, entry_id)}  [{colour}]{f.get('side', '?'):4}[/{colour}]  {_short(f.get('token_id', '')):14}  "
            f"{float(f.get('size', 0) or 0):>9.2f} @ {float(f.get('price', 0) or 0):.3f}  {escape(who):10}  "
            f"{f.get('source', ''):6}  {escape(f.get('slug', ''))} {escape(f.get('outcome', ''))} "
            f"{escape(f.get('market_version') or 'v1')}")


def format_event(entry_id: str, f: dict[str, str]) -> str:
    level = f.get("level", "info")
    colour = {"warning": "yellow", "error": "red"}.get(level, "white")
    return (f"{_ts(f, entry_id)}  [{colour}]{level:7}[/{colour}]  {f.get('kind', ''):24}  "
            f"{_short(f.get('token_id', '')):14}  {escape(f.get('reason', ''))}")


def tail(stream: str, fmt: Format, keep: Filter, count: int, follow: bool, as_json: bool, duration: float) -> None:
    r = client()
    last = "0-0"
    rows = list(reversed(r.xrevrange(stream, count=max(count * 20, 200) if count else 1)))
    shown = [(i, f) for i, f in rows if keep(f)][-count:] if count else []
    if rows:
        last = rows[-1][0]
    for entry_id, fields in shown:
        _print(entry_id, fields, fmt, as_json)
    if not follow:
        return
    deadline = time.monotonic() + duration if duration > 0 else float("inf")
    try:
        while time.monotonic() < deadline:
            block = int(min(1.0, max(deadline - time.monotonic(), 0.01)) * 1000) if duration > 0 else 1000
            try:
                reply = r.xread({stream: last}, count=500, block=block)
            except redis.RedisError as exc:
                console.print(f"[red]Redis error: {exc}; retrying[/red]")
                time.sleep(1)
                continue
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    if keep(fields):
                        _print(entry_id, fields, fmt, as_json)
    except KeyboardInterrupt:
        pass


def _print(entry_id: str, fields: dict[str, str], fmt: Format, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"entry_id": entry_id, **fields}, separators=(",", ":")), flush=True)  # noqa: T201
    else:
        console.print(fmt(entry_id, fields))


COUNT = typer.Option(20, "--count", "-n", help="show this many latest entries first (0 = none)")
FOLLOW = typer.Option(False, "--follow", "-f", help="keep printing new entries until Ctrl-C")
JSON = typer.Option(False, "--json", help="one JSON object per line (for jq)")
DURATION = typer.Option(0.0, help="with --follow: stop after this many seconds (0 = never)")


def register(app: typer.Typer) -> None:
    signals = typer.Typer(help="BUY/SELL signals (the signals stream).", no_args_is_help=True)
    events = typer.Typer(help="Audit events: every decision with its reason (the events stream).", no_args_is_help=True)
    app.add_typer(signals, name="signals")
    app.add_typer(events, name="events")

    @signals.command("tail")
    def signals_tail(count: int = COUNT, follow: bool = FOLLOW, as_json: bool = JSON, duration: float = DURATION,
                     token: str = typer.Option("", help="only this token"),
                     side: str = typer.Option("", help="BUY or SELL")) -> None:
        """The latest signals, then new ones with --follow."""
        side = side.upper()
        if side not in ("", "BUY", "SELL"):
            console.print("[red]--side is BUY or SELL[/red]")
            raise typer.Exit(2)

        def keep(f: dict[str, str]) -> bool:
            return (not token or f.get("token_id") == token) and (not side or f.get("side") == side)

        tail(keys_from_env().signals(), format_signal, keep, count, follow, as_json, duration)

    @events.command("tail")
    def events_tail(count: int = COUNT, follow: bool = FOLLOW, as_json: bool = JSON, duration: float = DURATION,
                    kind: str = typer.Option("", help="kind prefix, e.g. token. or control."),
                    level: str = typer.Option("", help="info, warning or error (that level and above)"),
                    token: str = typer.Option("", help="only this token")) -> None:
        """The latest audit events, then new ones with --follow."""
        order = {"info": 0, "warning": 1, "error": 2}
        if level and level not in order:
            console.print("[red]--level is info, warning or error[/red]")
            raise typer.Exit(2)

        def keep(f: dict[str, str]) -> bool:
            return (f.get("kind", "").startswith(kind) and (not token or f.get("token_id") == token)
                    and order.get(f.get("level", "info"), 0) >= order.get(level or "info", 0))

        tail(keys_from_env().events(), format_event, keep, count, follow, as_json, duration)
