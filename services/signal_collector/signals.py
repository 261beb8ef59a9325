"""Trade -> Signal (A4), and the min_size filter (A3). Pure."""

from __future__ import annotations

from shared.config import Target
from shared.messages import Signal, stable_id
from shared.polymarket.data_api import Trade

PRODUCER = "signal_collector"


def wanted(trade: Trade, target: Target) -> bool:
    """A3: trades below the target's ``min_size`` are dropped (the cursor still moves past them)."""
    return trade.size >= target.min_size


def to_signal(trade: Trade, target: Target, now_ms: int, source: str = "poll") -> Signal:
    """The id is stable for (wallet, trade key), so re-reading the same trade gives the same signal
    id and the orchestrator's idempotency makes a repeat harmless; the wallet is part of it so two
    followed wallets with equal fills in one transaction keep distinct signals."""
    return Signal(
        id=stable_id(target.account.lower(), *trade.key),
        ts_event=trade.timestamp * 1000,
        ts_init=now_ms,
        producer=PRODUCER,
        side=trade.side,
        token_id=trade.token_id,
        account=target.account.lower(),
        size=trade.size,
        price=trade.price,
        source=source,
        condition_id=trade.condition_id,
        slug=trade.slug,
        outcome=trade.outcome,
        title=trade.title,
        tx_hash=trade.tx_hash,
    )
