"""Trade -> Signal (A4), screen candidate -> Signal (A7), and the min_size filter (A3). Pure."""

from __future__ import annotations

from typing import Any

from services.signal_collector.screen import Candidate
from shared.config import Target
from shared.messages import Signal, stable_id
from shared.venue.data_api import Trade
from shared.venue.gamma import TokenMeta

PRODUCER = "signal_collector"
SCREEN = "screen"


def wanted(trade: Trade, target: Target) -> bool:
    """A3: trades below the target's ``min_size`` are dropped (the cursor still moves past them)."""
    return trade.size >= target.min_size


def signal_id(account: str, trade: Trade) -> str:
    """Stable for (wallet, trade key): the poller and the live-data socket give one trade the same
    id, so the collector's seen-set emits it once and the orchestrator's idempotency makes any
    repeat harmless; the wallet is part of it so two followed wallets with equal fills in one
    transaction keep distinct signals."""
    return stable_id(account.lower(), *trade.key)


def _meta_fields(meta: TokenMeta | None) -> dict[str, Any]:
    if meta is None:
        return {}
    return {"end_date": meta.end_date or None, "tick_size": meta.tick_size, "neg_risk": meta.neg_risk,
            "min_order_size": meta.min_order_size, "sibling_token": meta.sibling_token or None,
            "market_version": meta.version, "fee_rate": meta.fee_rate,
            "fee_exponent": None if meta.fee_rate is None else meta.fee_exponent}


def to_signal(trade: Trade, target: Target, now_ms: int, source: str = "poll",
              meta: TokenMeta | None = None) -> Signal:
    return Signal(
        id=signal_id(target.account, trade),
        ts_event=trade.timestamp * 1000,
        ts_init=now_ms,
        producer=PRODUCER,
        side=trade.side,
        token_id=trade.token_id,
        account=target.account.lower(),
        size=trade.size,
        price=trade.price,
        source=source,
        condition_id=trade.condition_id or (meta.condition_id if meta else ""),
        slug=trade.slug or (meta.slug if meta else ""),
        outcome=trade.outcome or (meta.outcome if meta else ""),
        title=trade.title or (meta.question if meta else ""),
        tx_hash=trade.tx_hash,
        **_meta_fields(meta),
    )


def screen_signal(c: Candidate, now_ms: int, meta: TokenMeta | None = None) -> Signal:
    """A screened token: BUY, no followed wallet, no size (the orchestrator sizes its orders);
    the id depends on the token only, so a token is signalled once however often it passes."""
    return Signal(
        id=stable_id(SCREEN, c.token_id), ts_event=now_ms, ts_init=now_ms, producer=PRODUCER, side="BUY",
        token_id=c.token_id, account="", size=0.0, price=c.price, source=SCREEN,
        condition_id=c.market.condition_id, slug=c.market.slug, outcome=c.outcome, title=c.market.question,
        **{"market_version": c.market.version, **_meta_fields(meta)},
    )
