"""``polyfleet token ID``: one token's lifecycle and its books — matched, confirmed and pending
(docs/orchestrator.md, Settlement) — and the fills its ledger still holds, each with its trade's status."""

from __future__ import annotations

import json

import redis
import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from cli.connection import client
from shared.keys import Keys, keys_from_env
from shared.ledger import Ledger, LedgerFill

console = Console()


def pending_cell(h: dict[str, str]) -> str:
    """The status table's pending column: net shares not settled and in how many trades ("" = all settled)."""
    trades = int(float(h.get("pending_trades") or 0))
    if not trades:
        return ""
    return f"{float(h.get('pending') or 0):+.2f} in {trades}"


def redemption_cell(h: dict[str, str], redeemable: bool) -> str:
    """Where the token's position in a resolved market stands: redeemed (for what), waiting for the
    redeemer (flagged in pf:redeemable), or "-" (its market has not resolved while held)."""
    if h.get("redeemed_at"):
        return (f"redeemed: {float(h.get('redeemed_shares') or 0):.2f} shares paid "
                f"${float(h.get('redeemed_payout') or 0):.2f} (tx {escape(h.get('redeem_tx') or '-')})")
    return "redeemable: waiting for the redeemer" if redeemable else "-"


def render_token(r: redis.Redis, k: Keys, token_id: str) -> Group | None:
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(k.token(token_id))
    pipe.hgetall(k.ledger(token_id))
    pipe.hexists(k.redeemable(), token_id)
    h, stored, redeemable = pipe.execute()
    if not h:
        return None

    def num(name: str, default: str = "0") -> float:
        return float(h.get(name) or default)

    summary = Table(title=f"token {token_id}", show_header=False)
    summary.add_column("field")
    summary.add_column("value", overflow="fold")
    market = f"{h.get('slug', '')} {h.get('outcome', '')}".strip()
    rows = [
        ("market", escape(market)), ("state", h.get("state", "")), ("worker", h.get("owner", "")),
        ("epoch", h.get("epoch", "")),
        ("position (matched)", f"{num('position'):.2f} @ {num('avg_cost'):.4f}"),
        ("position (confirmed)", f"{num('position_confirmed', h.get('position') or '0'):.2f} @ "
                                 f"{num('avg_cost_confirmed', h.get('avg_cost') or '0'):.4f}"),
        ("pending", f"{num('pending'):+.2f} (buys {num('pending_buy'):.2f}, sells {num('pending_sell'):.2f}, "
                    f"${num('pending_notional'):.2f} in {int(num('pending_trades'))} trade(s))"),
        ("realised PnL", f"{num('realized_pnl'):.4f} matched, "
                         f"{num('realized_pnl_confirmed', h.get('realized_pnl') or '0'):.4f} confirmed"),
        ("exposure", f"{num('exposure'):.2f}"), ("failed trades", str(int(num('failed_trades')))),
        ("resolved market", redemption_cell(h, bool(redeemable))),
        ("last event", escape(h.get("last_event", ""))),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    ledger = Ledger.from_hash(stored, h)
    trades = Table(title="fills not folded yet (newest first)", expand=True)
    for col in ("fill", "trade", "side", "size", "price", "status"):
        trades.add_column(col)
    for f in sorted(ledger.fills.values(), key=LedgerFill.sort_key, reverse=True):
        status = ledger.status_of(f)
        colour = {"FAILED": "red", "CONFIRMED": "green"}.get(status, "yellow")
        trades.add_row(f.fill_id[:12], escape(f.trade_id or "-"), f.side, f"{f.size:.2f}", f"{f.price:.4f}",
                       f"[{colour}]{status}[/{colour}]")
    return Group(summary, trades)


def register(app: typer.Typer) -> None:
    @app.command()
    def token(token_id: str = typer.Argument(..., help="token id"),
              as_json: bool = typer.Option(False, "--json", help="the token hash and its ledger as JSON")) -> None:
        """One token: lifecycle, position matched / confirmed / pending, and its unsettled fills."""
        r, k = client(), keys_from_env()
        if as_json:
            typer.echo(json.dumps({"token": r.hgetall(k.token(token_id)), "ledger": r.hgetall(k.ledger(token_id))},
                                  indent=2, sort_keys=True))
            return
        shown = render_token(r, k, token_id)
        if shown is None:
            console.print(f"token {token_id} is unknown")
            raise typer.Exit(1)
        console.print(shown)
