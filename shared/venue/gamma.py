"""Gamma market objects (reference §2.4, docs/venue.md G3) -> typed markets and per-token metadata (A7, A8).

Traps handled here, once: ``outcomes``, ``outcomePrices``, ``clobTokenIds`` and ``positionIds``
are JSON *text* inside the JSON (a real list is accepted too); ``volume``/``liquidity`` are
strings while ``volumeNum``/``liquidityNum`` are numbers; ``endDate`` is ISO-8601 with a ``Z``.
A market that does not fit raises :class:`BadMarket` (the caller counts and skips it).

Two market systems (docs/venue.md V1): Gamma's ``version`` says which, never the fields a market
happens to carry. A ``"v1"`` market's outcomes are its ``clobTokenIds``, a ``"v2"`` market's its
``positionIds``; a market without ``version`` is v1. A version polyfleet does not know is kept
as Gamma spelled it (``GammaMarket.version``), its outcomes named by whichever id list it has, so
the token can be refused by name with :class:`~shared.venue.errors.UnknownMarketVersion` where an
order would start (the orchestrator), instead of vanishing here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.input_errors import InputError
from shared.venue.errors import UnknownMarketVersion
from shared.venue.ids import system_of


class BadMarket(InputError):
    """A Gamma object that cannot be a tradable market."""


@dataclass(frozen=True, slots=True)
class GammaMarket:
    id: str
    question: str
    slug: str
    condition_id: str
    end_date: datetime | None
    outcomes: tuple[str, ...]
    prices: tuple[float | None, ...]  # per outcome, None when not given
    token_ids: tuple[str, ...]
    volume: float
    liquidity: float
    active: bool
    closed: bool
    accepting_orders: bool
    neg_risk: bool
    tick_size: float | None
    min_order_size: float | None
    event_slug: str = ""
    # feeSchedule (reference 2.4, 8.1): taker fee = size x fee_rate x (p(1-p))^fee_exponent
    fee_rate: float = 0.0
    fee_exponent: float = 1.0
    neg_risk_market_id: str = ""
    group_title: str = ""
    version: str = "v1"  # Gamma's version, lower case ("v1" when absent); may be one polyfleet does not know


@dataclass(frozen=True, slots=True)
class TokenMeta:
    """A8: what every service wants to know about a token, fetched once."""

    token_id: str
    condition_id: str
    question: str
    slug: str
    outcome: str
    end_date: str  # ISO-8601 ("" when unknown)
    tick_size: float | None
    neg_risk: bool
    min_order_size: float | None
    sibling_token: str
    version: str = "v1"  # the market's Gamma version; state written before it existed is v1
    # feeSchedule (docs/venue.md F1); None: not known (a hash written before the field existed)
    fee_rate: float | None = None
    fee_exponent: float = 1.0

    def to_hash(self) -> dict[str, str]:
        return {
            "token_id": self.token_id, "condition_id": self.condition_id, "question": self.question,
            "slug": self.slug, "outcome": self.outcome, "end_date": self.end_date,
            "tick_size": "" if self.tick_size is None else repr(self.tick_size),
            "neg_risk": "true" if self.neg_risk else "false",
            "min_order_size": "" if self.min_order_size is None else repr(self.min_order_size),
            "sibling_token": self.sibling_token, "version": self.version,
            "fee_rate": "" if self.fee_rate is None else repr(self.fee_rate), "fee_exponent": repr(self.fee_exponent),
        }

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> TokenMeta | None:
        if not h or not h.get("token_id"):
            return None
        try:
            return cls(
                token_id=h["token_id"], condition_id=h.get("condition_id", ""), question=h.get("question", ""),
                slug=h.get("slug", ""), outcome=h.get("outcome", ""), end_date=h.get("end_date", ""),
                tick_size=float(h["tick_size"]) if h.get("tick_size") else None,
                neg_risk=h.get("neg_risk") == "true",
                min_order_size=float(h["min_order_size"]) if h.get("min_order_size") else None,
                sibling_token=h.get("sibling_token", ""), version=h.get("version") or "v1",
                fee_rate=float(h["fee_rate"]) if h.get("fee_rate") else None,
                fee_exponent=float(h.get("fee_exponent") or 1.0),
            )
        except ValueError:
            return None


def _json_list(value: Any, what: str) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise BadMarket(f"{what} is not a JSON array: {value[:60]!r}") from exc
    if not isinstance(value, list):
        raise BadMarket(f"{what} is not an array")
    return value


def _num(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _first_num(row: dict[str, Any], *names: str) -> float:
    for name in names:
        value = _num(row.get(name))
        if value is not None:
            return value
    return 0.0


def parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        out = datetime.fromisoformat(text)
    except ValueError:
        return None
    return out if out.tzinfo else out.replace(tzinfo=UTC)


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return default


def parse_market(row: Any) -> GammaMarket:
    if not isinstance(row, dict):
        raise BadMarket(f"market is not an object: {str(row)[:60]!r}")
    version = _version(row.get("version"))
    ids_field = _ids_field(row, version)
    tokens = [str(t) for t in _json_list(row.get(ids_field), ids_field)]
    outcomes = [str(o) for o in _json_list(row.get("outcomes"), "outcomes")]
    prices = [_num(p) for p in _json_list(row.get("outcomePrices"), "outcomePrices")]
    if not tokens:
        raise BadMarket(f"market {row.get('id')!r} (version {version}) has no {ids_field}")
    if outcomes and len(outcomes) != len(tokens):
        raise BadMarket(f"market {row.get('id')!r}: {len(outcomes)} outcomes for {len(tokens)} tokens")
    events = row.get("events")
    event_slug = ""
    if isinstance(events, list) and events and isinstance(events[0], dict):
        event_slug = str(events[0].get("slug") or "")
    return GammaMarket(
        id=str(row.get("id") or ""), question=str(row.get("question") or ""), slug=str(row.get("slug") or ""),
        condition_id=str(row.get("conditionId") or ""), end_date=parse_date(row.get("endDate")),
        outcomes=tuple(outcomes or [""] * len(tokens)),
        prices=tuple(prices[i] if i < len(prices) else None for i in range(len(tokens))),
        token_ids=tuple(tokens),
        volume=_first_num(row, "volumeNum", "volume"), liquidity=_first_num(row, "liquidityNum", "liquidity"),
        active=_flag(row.get("active"), True), closed=_flag(row.get("closed"), False),
        accepting_orders=_flag(row.get("acceptingOrders"), True), neg_risk=_flag(row.get("negRisk"), False),
        tick_size=_num(row.get("orderPriceMinTickSize")), min_order_size=_num(row.get("orderMinSize")),
        event_slug=event_slug, **_fees(row),
        neg_risk_market_id=str(row.get("negRiskMarketID") or ""), group_title=str(row.get("groupItemTitle") or ""),
        version=version,
    )


def _version(value: Any) -> str:
    """Gamma's ``version`` in lower case; absent (or empty) is "v1" (docs/venue.md V1)."""
    if value is None or value == "":
        return "v1"
    return str(value).strip().lower() or "v1"


def _ids_field(row: dict[str, Any], version: str) -> str:
    """Where a market's outcome ids are: chosen by ``version``. For a version polyfleet does not
    know, whichever list the market has, only so that its tokens can be named when refused."""
    try:
        return "positionIds" if system_of(version) == "v2" else "clobTokenIds"
    except UnknownMarketVersion:
        return "clobTokenIds" if row.get("clobTokenIds") else "positionIds"


def _fees(row: dict[str, Any]) -> dict[str, float]:
    """``feeSchedule`` {rate, exponent} when given; ``feesEnabled: false`` means no fee at all."""
    sched = row.get("feeSchedule") or row.get("fee_schedule")
    if row.get("feesEnabled") is False or not isinstance(sched, dict):
        return {"fee_rate": 0.0, "fee_exponent": 1.0}
    rate, exponent = _num(sched.get("rate")), _num(sched.get("exponent"))
    return {"fee_rate": max(rate or 0.0, 0.0), "fee_exponent": exponent if exponent and exponent > 0 else 1.0}


@dataclass(frozen=True, slots=True)
class GammaEvent:
    """A Gamma ``/events`` object with its nested markets (E1)."""

    id: str
    slug: str
    title: str
    neg_risk: bool  # the outcomes are mutually exclusive: exactly one market resolves YES
    neg_risk_augmented: bool  # outcomes may still be added ("Other"): the YES set is not complete
    neg_risk_market_id: str
    end_date: datetime | None
    markets: tuple[GammaMarket, ...]
    bad: tuple[str, ...] = ()  # nested markets that did not parse, one reason each


def parse_event(row: Any) -> GammaEvent:
    if not isinstance(row, dict):
        raise BadMarket(f"event is not an object: {str(row)[:60]!r}")
    markets, bad = parse_markets(row.get("markets") or [])
    slug = str(row.get("slug") or "")
    markets = [m if m.event_slug else _with_event_slug(m, slug) for m in markets]
    return GammaEvent(
        id=str(row.get("id") or ""), slug=slug, title=str(row.get("title") or ""),
        neg_risk=_flag(row.get("negRisk"), False) or _flag(row.get("enableNegRisk"), False),
        neg_risk_augmented=_flag(row.get("negRiskAugmented"), False),
        neg_risk_market_id=str(row.get("negRiskMarketID") or ""), end_date=parse_date(row.get("endDate")),
        markets=tuple(markets), bad=tuple(bad),
    )


def _with_event_slug(m: GammaMarket, slug: str) -> GammaMarket:
    return replace(m, event_slug=slug)


def parse_markets(rows: Any) -> tuple[list[GammaMarket], list[str]]:
    """Every market that parses, and one reason per object that did not."""
    if not isinstance(rows, list):
        return [], [f"body is not an array: {str(rows)[:60]!r}"]
    out: list[GammaMarket] = []
    bad: list[str] = []
    for row in rows:
        try:
            out.append(parse_market(row))
        except BadMarket as exc:
            bad.append(str(exc))
    return out, bad


def token_meta(market: GammaMarket, token_id: str) -> TokenMeta:
    """The metadata of one of ``market``'s tokens (the sibling is the other token of a binary market)."""
    i = market.token_ids.index(token_id)
    siblings = [t for t in market.token_ids if t != token_id]
    return TokenMeta(
        token_id=token_id, condition_id=market.condition_id, question=market.question, slug=market.slug,
        outcome=market.outcomes[i],
        end_date=market.end_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if market.end_date else "",
        tick_size=market.tick_size, neg_risk=market.neg_risk, min_order_size=market.min_order_size,
        sibling_token=siblings[0] if len(siblings) == 1 else "", version=market.version,
        fee_rate=market.fee_rate, fee_exponent=market.fee_exponent,
    )
