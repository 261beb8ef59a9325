"""The arbitrage catalogue (E1): Gamma events -> sets of tokens whose payoffs add up to $1 (pure).

* Every open binary market (two tokens) is a set for ``buy_both`` and ``split_sell``; that holds
  for the outcome markets of a neg-risk event too (merge/split go through the adapter there).
* A neg-risk event whose every outcome market is open is a set of YES tokens for
  ``negrisk_buy_all`` and ``negrisk_sell_all``. An *augmented* event (outcomes may still be added,
  e.g. "Other") is skipped: its YES set is not known to be complete, so buying all of it is not
  risk-free.
* Every set carries its market system (Gamma ``version``, docs/venue.md V1): split, merge and
  redeem differ between v1 (CTF) and v2 (Protocol V2). A market of a version polyfleet does not
  know is skipped, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.arb_scanner.detect import Kind
from shared.venue.errors import UnknownMarketVersion
from shared.venue.fees import FeeSchedule
from shared.venue.gamma import BadMarket, GammaEvent, GammaMarket, parse_event
from shared.venue.ids import system_of

DEFAULT_TICK = 0.01
DEFAULT_MIN_SIZE = 5.0


@dataclass(frozen=True, slots=True)
class ArbSet:
    id: str  # condition id (binary) or neg-risk market id (event)
    kinds: tuple[Kind, ...]
    title: str
    tokens: tuple[str, ...]  # binary: (YES, NO); event: every outcome's YES
    fees: tuple[FeeSchedule, ...]
    min_order_size: float
    tick_size: float
    end_ts: float | None  # epoch seconds
    neg_risk: bool
    condition_ids: tuple[str, ...]  # what merge/split/convert act on (one per outcome for an event)
    neg_risk_market_id: str = ""
    market_version: str = "v1"  # the market system of every leg (sets written before it existed: v1)

    @property
    def end_date(self) -> str:
        if self.end_ts is None:
            return ""
        return datetime.fromtimestamp(self.end_ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_json(self) -> str:
        return json.dumps({
            "id": self.id, "kinds": [str(k) for k in self.kinds], "title": self.title, "tokens": list(self.tokens),
            "fees": [[f.rate, f.exponent] for f in self.fees], "min_order_size": self.min_order_size,
            "tick_size": self.tick_size, "end_ts": self.end_ts, "neg_risk": self.neg_risk,
            "condition_ids": list(self.condition_ids), "neg_risk_market_id": self.neg_risk_market_id,
            "market_version": self.market_version,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ArbSet:
        d: dict[str, Any] = json.loads(raw)
        return cls(
            id=d["id"], kinds=tuple(Kind(k) for k in d["kinds"]), title=d.get("title", ""),
            tokens=tuple(d["tokens"]), fees=tuple(FeeSchedule(r, e) for r, e in d["fees"]),
            min_order_size=float(d["min_order_size"]), tick_size=float(d["tick_size"]),
            end_ts=d.get("end_ts"), neg_risk=bool(d.get("neg_risk")), condition_ids=tuple(d["condition_ids"]),
            neg_risk_market_id=d.get("neg_risk_market_id", ""), market_version=d.get("market_version", "v1"),
        )


def _tradable(m: GammaMarket) -> bool:
    return m.active and not m.closed and m.accepting_orders and len(m.token_ids) == 2


def _ts(m: GammaMarket | GammaEvent) -> float | None:
    return m.end_date.timestamp() if m.end_date else None


def _binary(m: GammaMarket, kinds: set[Kind]) -> ArbSet | None:
    wanted = tuple(k for k in (Kind.BUY_BOTH, Kind.SPLIT_SELL) if k in kinds)
    if not wanted:
        return None
    fee = FeeSchedule(m.fee_rate, m.fee_exponent)
    return ArbSet(m.condition_id, wanted, m.question, m.token_ids, (fee, fee),
                  m.min_order_size or DEFAULT_MIN_SIZE, m.tick_size or DEFAULT_TICK, _ts(m), m.neg_risk,
                  (m.condition_id,), m.neg_risk_market_id, system_of(m.version))


def _event_set(ev: GammaEvent, kinds: set[Kind]) -> tuple[ArbSet | None, str]:
    wanted = tuple(k for k in (Kind.NEGRISK_BUY_ALL, Kind.NEGRISK_SELL_ALL) if k in kinds)
    if not wanted or not ev.neg_risk:
        return None, ""
    if ev.neg_risk_augmented:
        return None, f"event {ev.slug}: augmented neg-risk (outcomes may be added), YES set not complete"
    if ev.bad or len(ev.markets) < 2 or not all(_tradable(m) for m in ev.markets):
        return None, f"event {ev.slug}: not every outcome market is open and parsed"
    systems = {system_of(m.version) for m in ev.markets}
    if len(systems) != 1:
        return None, f"event {ev.slug}: outcome markets of both market systems"
    yes = tuple(m.token_ids[0] for m in ev.markets)
    nr_id = ev.neg_risk_market_id or ev.markets[0].neg_risk_market_id or ev.id
    ends = [t for t in (_ts(m) for m in ev.markets) if t is not None]
    return ArbSet(
        nr_id, wanted, ev.title, yes, tuple(FeeSchedule(m.fee_rate, m.fee_exponent) for m in ev.markets),
        max(m.min_order_size or DEFAULT_MIN_SIZE for m in ev.markets),
        max(m.tick_size or DEFAULT_TICK for m in ev.markets), max(ends) if ends else _ts(ev), True,
        tuple(m.condition_id for m in ev.markets), nr_id, systems.pop(),
    ), ""


def build(rows: list[Any], kinds: set[Kind], min_liquidity: float = 0.0) -> tuple[list[ArbSet], list[str]]:
    """Every arbitrage set in Gamma ``/events`` rows, and one reason per event or market left out."""
    out: dict[str, ArbSet] = {}
    skipped: list[str] = []
    for row in rows:
        try:
            ev = parse_event(row)
        except BadMarket as exc:
            skipped.append(str(exc))
            continue
        skipped.extend(ev.bad)
        unknown = {m.id: why for m in ev.markets if (why := _unknown_version(m))}
        skipped.extend(f"market {mid}: {why}" for mid, why in unknown.items())
        for m in ev.markets:
            if m.id not in unknown and _tradable(m) and m.liquidity >= min_liquidity \
                    and (s := _binary(m, kinds)) is not None:
                out[s.id] = s
        group, why = _event_set(ev, kinds) if not unknown else (None, "")
        if group is not None:
            out[group.id] = group
        elif why:
            skipped.append(why)
    return list(out.values()), skipped


def _unknown_version(m: GammaMarket) -> str:
    """Why polyfleet cannot trade ``m``'s market system ("" when it can)."""
    try:
        system_of(m.version, m.id)
    except UnknownMarketVersion as exc:
        return str(exc)
    return ""


def index(sets: list[ArbSet]) -> dict[str, list[tuple[ArbSet, int]]]:
    """token -> every (set, leg index) it belongs to: what a tick re-evaluates."""
    idx: dict[str, list[tuple[ArbSet, int]]] = {}
    for s in sets:
        for i, t in enumerate(s.tokens):
            idx.setdefault(t, []).append((s, i))
    return idx
