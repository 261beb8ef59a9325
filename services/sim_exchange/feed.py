"""The Data-API trade store: rows shaped exactly like ``GET /trades`` and ``GET /activity`` (pure)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from services.sim_exchange.market import MarketSim

TRADE_FIELDS = (
    "proxyWallet", "side", "asset", "conditionId", "size", "price", "timestamp", "title", "slug", "icon",
    "eventSlug", "outcome", "outcomeIndex", "name", "pseudonym", "bio", "profileImage", "profileImageOptimized",
    "transactionHash",
)
ACTIVITY_FIELDS = (
    "proxyWallet", "timestamp", "conditionId", "type", "size", "usdcSize", "transactionHash", "price", "asset",
    "side", "outcomeIndex", "title", "slug", "icon", "eventSlug", "outcome", "name", "pseudonym", "bio",
    "profileImage", "profileImageOptimized",
)


class FeedError(ValueError):
    """A bad query or trade row; the message is returned as a 400."""


@dataclass
class StoredTrade:
    row: dict[str, Any]
    maker: bool = False
    seq: int = 0


@dataclass
class TradeFeed:
    sim: MarketSim
    rows: list[StoredTrade] = field(default_factory=list)
    _seq: int = 0

    def make_row(self, raw: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        """A complete trade row from a partial one (market fields filled from the sim's market)."""
        for key in ("proxyWallet", "side", "asset", "size", "price"):
            if raw.get(key) in (None, ""):
                raise FeedError(f"trade row is missing {key!r}")
        side = str(raw["side"]).upper()
        if side not in ("BUY", "SELL"):
            raise FeedError(f"trade row side must be BUY or SELL, not {raw['side']!r}")
        asset = str(raw["asset"])
        market = self.sim.market_of.get(asset)
        book = self.sim.by_token.get(asset)
        try:
            size, price = float(raw["size"]), float(raw["price"])
            ts = int(raw["timestamp"]) if raw.get("timestamp") not in (None, "") else int(now or time.time())
        except (TypeError, ValueError) as exc:
            raise FeedError(f"trade row has a bad number: {exc}") from exc
        row: dict[str, Any] = {
            "proxyWallet": str(raw["proxyWallet"]).lower(),
            "side": side,
            "asset": asset,
            "conditionId": raw.get("conditionId") or (market.condition_id if market else ""),
            "size": size,
            "price": price,
            "timestamp": ts,
            "title": raw.get("title") or (market.question if market else ""),
            "slug": raw.get("slug") or (market.slug if market else ""),
            "icon": raw.get("icon") or "",
            "eventSlug": raw.get("eventSlug") or (market.event_slug if market else ""),
            "outcome": raw.get("outcome") or (book.outcome if book else ""),
            "outcomeIndex": int(raw["outcomeIndex"]) if raw.get("outcomeIndex") is not None
            else (book.outcome_index if book else 999),
            "name": raw.get("name") or "",
            "pseudonym": raw.get("pseudonym") or "",
            "bio": raw.get("bio") or "",
            "profileImage": raw.get("profileImage") or "",
            "profileImageOptimized": raw.get("profileImageOptimized") or "",
            "transactionHash": raw.get("transactionHash") or "0x" + uuid.uuid4().hex + uuid.uuid4().hex,
        }
        return row

    def add(self, row: dict[str, Any], maker: bool = False) -> dict[str, Any]:
        self._seq += 1
        self.rows.append(StoredTrade(row, maker, self._seq))
        return row

    def _newest_first(self) -> list[StoredTrade]:
        return sorted(self.rows, key=lambda t: (t.row["timestamp"], t.seq), reverse=True)

    def trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /trades`` semantics (limit clamps to 10000; offset past 10000 is an error)."""
        limit = min(_int(params, "limit", 100), 10_000)
        offset = _int(params, "offset", 0)
        if offset > 10_000 or offset < 0 or limit < 0:
            raise FeedError("offset must be between 0 and 10000")
        taker_only = params.get("takerOnly", "true").lower() != "false"
        rows = self._filtered(params, include_maker=not taker_only)
        return [dict(r) for r in rows[offset:offset + limit]]

    def activity(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /activity`` semantics (user required; limit clamps to 500; offset past 5000 is an error)."""
        if not params.get("user"):
            raise FeedError("user is required")
        limit = min(_int(params, "limit", 100), 500)
        offset = _int(params, "offset", 0)
        if offset > 5_000 or offset < 0 or limit < 0:
            raise FeedError("offset must be between 0 and 5000")
        types = {t.strip().upper() for t in params.get("type", "").split(",") if t.strip()}
        if types and "TRADE" not in types:
            return []
        rows = self._filtered(params, include_maker=True)
        if params.get("sortDirection", "DESC").upper() == "ASC":
            rows.reverse()
        out = []
        for r in rows[offset:offset + limit]:
            act = {k: r[k] for k in ACTIVITY_FIELDS if k in r}
            act["type"] = "TRADE"
            act["usdcSize"] = round(r["size"] * r["price"], 6)
            out.append({k: act[k] for k in ACTIVITY_FIELDS})
        return out

    def _filtered(self, params: dict[str, str], include_maker: bool) -> list[dict[str, Any]]:
        user = params.get("user", "").lower()
        side = params.get("side", "").upper()
        markets = {m.strip().lower() for m in params.get("market", "").split(",") if m.strip()}
        start, end = _int(params, "start", 0), _int(params, "end", 0)
        out = []
        for t in self._newest_first():
            r = t.row
            if t.maker and not include_maker:
                continue
            if user and r["proxyWallet"] != user:
                continue
            if side and r["side"] != side:
                continue
            if markets and str(r["conditionId"]).lower() not in markets:
                continue
            if start and r["timestamp"] < start:
                continue
            if end and r["timestamp"] > end:
                continue
            out.append(r)
        return out


def _int(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError as exc:
        raise FeedError(f"{name} must be an integer") from exc
