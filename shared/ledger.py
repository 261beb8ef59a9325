"""The format of a token's settlement ledger, ``pf:ledger:{token_id}`` (pure).

The orchestrator writes it (the one place fills are booked, services/orchestrator/reports.py) and
derives the token's position, exposure and PnL from it; the API reads it to show a token's
trades. One hash per token:

| field | value |
|---|---|
| ``base`` | JSON ``{"matched": [position, avg_cost, realized], "confirmed": [...], "failed": n}``: what the entries folded away at a session's close (and the token's figures from before the ledger) add up to |
| ``f:{fill_id}`` | JSON of one fill: trade, side, price, size, fee, ts, epoch, status (as written with the fill), seq |
| ``t:{trade_id}`` | the trade's settlement status as last learned (from its fills or a ``trade`` message) |
| ``adj:{epoch}`` | JSON ``{"seq", "shares"}``: shares a session said it held that no fill of it explained |

A fill's status is the later of its own and its trade's (:func:`later`), so a status learned
before the fill applies to it when it comes, and learning one twice changes nothing. Entries are
folded in ``seq`` order: the stream entry id the fill came in (``ms-n``, given by Redis, so it
orders the fills as they were written, across workers and their clocks), ties by id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

# The order a trade's statuses are taken in when two are known: the further one wins. RETRYING and
# MINED are both still pending; FAILED beats CONFIRMED (the venue never reports both; any fixed
# rule makes the outcome independent of arrival order, and this one never counts a void trade).
STATUS_ORDER = ("MATCHED", "RETRYING", "MINED", "CONFIRMED", "FAILED")
PENDING = frozenset({"MATCHED", "RETRYING", "MINED"})
FINAL = frozenset({"CONFIRMED", "FAILED"})
_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}

Figures = tuple[float, float, float]  # position, average cost, realised PnL
_LAST = 2**63


def seq_key(seq: str) -> tuple[int, int]:
    """A stream entry id (``ms-n``) as a sortable pair; anything else sorts first."""
    ms, _, n = seq.partition("-")
    try:
        return int(ms), int(n or 0)
    except ValueError:
        return 0, 0


def later(a: str, b: str) -> str:
    """The status a trade has once both ``a`` and ``b`` were reported ("" = none)."""
    if not a or not b:
        return a or b
    return a if _RANK.get(a, -1) >= _RANK.get(b, -1) else b


@dataclass(frozen=True)
class LedgerFill:
    fill_id: str
    trade_id: str  # "" = no venue trade id (paper, reconciled, old producers): the fill stands alone
    side: str
    price: float
    size: float
    fee: float
    ts: int  # the fill's ts_event: the UTC day its realised PnL belongs to
    epoch: int
    status: str  # as written with the fill
    seq: str  # the pf:fills entry id it came in

    @property
    def trade(self) -> str:
        return self.trade_id or self.fill_id

    def sort_key(self) -> tuple[tuple[int, int], str]:
        return (seq_key(self.seq), "f:" + self.fill_id)


@dataclass(frozen=True)
class Adjustment:
    epoch: int
    seq: str  # the entry id of the closed report it comes from
    shares: float

    def sort_key(self) -> tuple[tuple[int, int], str]:
        # ``seq`` is an id of another stream (pf:sessions): its sequence part does not compare with
        # pf:fills', so the adjustment goes after every fill of its millisecond (the report was
        # written after the session's fills).
        return ((seq_key(self.seq)[0], _LAST), f"adj:{self.epoch}")


@dataclass(frozen=True)
class Base:
    matched: Figures = (0.0, 0.0, 0.0)
    confirmed: Figures = (0.0, 0.0, 0.0)
    failed_trades: int = 0

    @classmethod
    def from_token(cls, fields: Mapping[str, str]) -> Base:
        """A token's figures from before it had a ledger (all of it counts as confirmed then)."""
        def num(name: str, default: float = 0.0) -> float:
            raw = fields.get(name)
            return float(raw) if raw not in (None, "") else default

        matched = (num("position"), num("avg_cost"), num("realized_pnl"))
        confirmed = (num("position_confirmed", matched[0]), num("avg_cost_confirmed", matched[1]),
                     num("realized_pnl_confirmed", matched[2]))
        return cls(matched, confirmed, int(num("failed_trades")))


@dataclass(frozen=True)
class Ledger:
    base: Base = Base()
    fills: Mapping[str, LedgerFill] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)  # trade id -> status
    adjustments: Mapping[int, Adjustment] = field(default_factory=dict)  # epoch -> adjustment

    def status_of(self, f: LedgerFill) -> str:
        return later(f.status, self.statuses.get(f.trade, ""))

    def with_fill(self, f: LedgerFill) -> Ledger:
        if f.fill_id in self.fills:  # written twice (a retried XADD): the first one stands
            f = replace(f, seq=self.fills[f.fill_id].seq)
        statuses = dict(self.statuses)
        if f.trade_id:  # every fill of a trade shares what any of them said
            statuses[f.trade_id] = later(statuses.get(f.trade_id, ""), f.status)
        return replace(self, fills={**self.fills, f.fill_id: f}, statuses=statuses)

    def with_status(self, trade_id: str, status: str) -> Ledger:
        return replace(self, statuses={**self.statuses, trade_id: later(self.statuses.get(trade_id, ""), status)})

    def with_adjustment(self, adj: Adjustment) -> Ledger:
        return replace(self, adjustments={**self.adjustments, adj.epoch: adj})

    def fills_of(self, trade: str) -> list[LedgerFill]:
        return sorted((f for f in self.fills.values() if f.trade == trade), key=LedgerFill.sort_key)

    # --- the Redis hash --------------------------------------------------------------------

    def to_hash(self) -> dict[str, str]:
        out = {"base": json.dumps({"matched": list(self.base.matched), "confirmed": list(self.base.confirmed),
                                   "failed": self.base.failed_trades})}
        for f in self.fills.values():
            out[f"f:{f.fill_id}"] = json.dumps({"trade": f.trade_id, "side": f.side, "price": f.price, "size": f.size,
                                                "fee": f.fee, "ts": f.ts, "epoch": f.epoch, "status": f.status,
                                                "seq": f.seq})
        for trade, status in self.statuses.items():
            out[f"t:{trade}"] = status
        for adj in self.adjustments.values():
            out[f"adj:{adj.epoch}"] = json.dumps({"seq": adj.seq, "shares": adj.shares})
        return out

    @classmethod
    def from_hash(cls, h: Mapping[str, str], token_fields: Mapping[str, str]) -> Ledger:
        """The ledger stored in ``h``; without a ``base`` (a token from before the ledger, or a new
        one) the base is the token's own figures."""
        if "base" in h:
            raw = json.loads(h["base"])
            base = Base(tuple(raw["matched"]), tuple(raw["confirmed"]), int(raw.get("failed", 0)))  # type: ignore[arg-type]
        else:
            base = Base.from_token(token_fields)
        fills: dict[str, LedgerFill] = {}
        statuses: dict[str, str] = {}
        adjustments: dict[int, Adjustment] = {}
        for name, value in h.items():
            kind, _, rest = name.partition(":")
            if kind == "f":
                d = json.loads(value)
                fills[rest] = LedgerFill(rest, d["trade"], d["side"], float(d["price"]), float(d["size"]),
                                         float(d["fee"]), int(d["ts"]), int(d["epoch"]), d["status"], d["seq"])
            elif kind == "t":
                statuses[rest] = value
            elif kind == "adj":
                d = json.loads(value)
                adjustments[int(rest)] = Adjustment(int(rest), d["seq"], float(d["shares"]))
        return cls(base, fills, statuses, adjustments)


def hash_changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What turns hash ``old`` into ``new``: the fields to set, the fields to delete."""
    return {k: v for k, v in new.items() if old.get(k) != v}, sorted(set(old) - set(new))
