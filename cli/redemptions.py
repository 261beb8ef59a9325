"""``polyfleet redemptions``: where each resolved market's redemption stands (``pf:redeem:status``,
docs/orchestrator.md "Redemption"), as a table or JSON; ``--retry CONDITION`` makes a failed,
unknown or stuck one due now (a ``redeem_retry`` control request, applied by the orchestrator and
acted on at the redeemer's next check). The read is shared with ``GET /api/redemptions``."""

from __future__ import annotations

import json
import re
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.connection import async_read, client
from cli.control import REASON, TIMEOUT, WAIT, send
from shared.clock import now_ms
from shared.keys import keys_from_env
from shared.redemptions import RETRYABLE, RedeemStatus, read_redemptions

console = Console(highlight=False)
CONDITION = re.compile(r"0x[0-9a-fA-F]{64}")
COLOR = {"unknown": "red", "setup_error": "red", "failed": "yellow", "sent": "cyan", "due": "cyan",
         "redeemed": "green"}


def _short(x: str) -> str:
    return f"{x[:8]}…{x[-6:]}" if len(x) > 16 else x


def _when(ms: int, now: int) -> str:
    if not ms:
        return ""
    sec = (ms - now) / 1000
    return "now" if sec <= 0 else f"in {sec:.0f}s" if sec < 120 else f"in {sec / 60:.0f}m"


def _tokens(row: dict[str, Any]) -> str:
    return "; ".join(f"{_short(t['token_id'])} {'won' if t['won'] else 'lost'}"
                     + ("" if t.get("shares") is None else f" {t['shares']:g} sh") for t in row["tokens"])


def table(rows: list[dict[str, Any]], now: int) -> Table:
    t = Table("market", "state", "tries", "next try", "reason", "tokens (shares before the last send)", "wallet",
              title="redemptions (not booked yet)")
    for v in rows:
        state = v["state"]
        color = COLOR.get(state, "white")
        retryable = state in RETRYABLE
        next_try = _when(v.get("next_at", 0), now) if retryable else ""
        if retryable and v.get("retry_asked_at", 0) > v.get("tried_at", 0):
            next_try = "now (asked)"
        t.add_row(_short(v["condition_id"]), f"[{color}]{state}[/{color}]", str(v.get("attempts", "")), next_try,
                  v.get("reason", ""), _tokens(v), _short(v.get("wallet", "")))
    return t


def _condition(cid: str) -> str:
    if not CONDITION.fullmatch(cid):
        console.print(f"[red]{cid!r} is not a condition id (0x + 64 hex digits)[/red]")
        raise typer.Exit(2)
    return cid


def register(app: typer.Typer) -> None:
    @app.command()
    def redemptions(as_json: bool = typer.Option(False, "--json", help="the same JSON as GET /api/redemptions"),
                    retry: str = typer.Option("", "--retry", metavar="CONDITION",
                                              help="retry this market's failed, unknown or stuck redemption now"),
                    reason: str = REASON, wait: bool = WAIT, timeout: float = TIMEOUT) -> None:
        """Resolved markets' redemptions not booked yet: waiting, due, sent, unknown (sent, no outcome:
        checked on chain before it is sent again), failed, setup_error, redeemed; tries, next try, why."""
        if retry:
            retry_now(_condition(retry), reason, wait, timeout)
            return
        show(as_json)


def retry_now(cid: str, reason: str, wait: bool, timeout: float) -> None:
    r, k = client(), keys_from_env()
    raw = r.hget(k.redeem_status(), cid)
    st = RedeemStatus.parse(cid, str(raw)) if raw else None
    if st is None or st.state not in RETRYABLE:
        console.print(f"[red]the redemption of {cid} is {st.state if st else 'not pending'}[/red]: only a failed, "
                      "unknown or stuck one is retried; nothing done (see `polyfleet redemptions`)")
        raise typer.Exit(2)
    send("redeem_retry", cid, reason or "retried by operator", wait=wait, timeout=timeout)


def show(as_json: bool) -> None:
    rows = async_read(read_redemptions)
    now = now_ms()
    if as_json:
        print(json.dumps({"redemptions": rows, "now_ms": now}, separators=(",", ":")))  # noqa: T201
        return
    if not rows:
        console.print("no redemptions pending: every position of a resolved market is redeemed and booked")
        return
    console.print(table(rows, now))
