"""L2 books per token and the ticks they produce (B2, B3, B5). Pure: no Redis, no sockets.

* A ``book`` snapshot replaces the token's levels; a ``price_change`` sets a level's new
  aggregate size (0 removes it). The venue does not sort levels best-first (best is the LAST
  entry), so the best bid is max(bids) and the best ask min(asks) -- never index 0.
* A ``tick_size_change`` drops the levels (they may be off the new grid) and ignores deltas until
  the next snapshot, as does a lost connection (:meth:`Books.invalidate`).
* :meth:`Books.apply` returns a :class:`~shared.ticks.Tick` per token whose top of book, last
  trade or tick size changed, with a per-token ``seq`` that only moves when a tick is emitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.polymarket.market_ws import (
    BookSnapshot,
    LastTrade,
    MarketEvent,
    PriceChange,
    PriceChangeBatch,
    TickSizeChange,
)
from shared.ticks import Tick

DEFAULT_TICK_SIZE = 0.01


class Top(NamedTuple):
    bid: float | None
    bid_size: float
    ask: float | None
    ask_size: float
    last: float | None
    tick_size: float


@dataclass
class TokenBook:
    token_id: str
    bids: dict[float, float] = field(default_factory=dict)  # price -> size
    asks: dict[float, float] = field(default_factory=dict)
    last: float | None = None
    tick_size: float = DEFAULT_TICK_SIZE
    ready: bool = False  # False until a snapshot: deltas without a base would build a wrong book

    def apply_snapshot(self, ev: BookSnapshot) -> None:
        self.bids = {lvl.price: lvl.size for lvl in ev.bids if lvl.size > 0}
        self.asks = {lvl.price: lvl.size for lvl in ev.asks if lvl.size > 0}
        if ev.tick_size:
            self.tick_size = ev.tick_size
        self.ready = True

    def apply_change(self, ch: PriceChange) -> bool:
        """False when ignored (no snapshot yet)."""
        if not self.ready:
            return False
        levels = self.bids if ch.side == "BUY" else self.asks
        if ch.size <= 0:
            levels.pop(ch.price, None)
        else:
            levels[ch.price] = ch.size
        return True

    def apply_tick_size(self, ev: TickSizeChange) -> None:
        self.bids.clear()
        self.asks.clear()
        self.tick_size = ev.new_tick_size
        self.ready = False

    def top(self) -> Top:
        bid = max(self.bids) if self.bids else None
        ask = min(self.asks) if self.asks else None
        return Top(
            bid=bid, bid_size=self.bids[bid] if bid is not None else 0.0,
            ask=ask, ask_size=self.asks[ask] if ask is not None else 0.0,
            last=self.last, tick_size=self.tick_size,
        )


class Books:
    """Every tracked token's book, last emitted top and sequence number."""

    def __init__(self) -> None:
        self._books: dict[str, TokenBook] = {}
        self._emitted: dict[str, Top] = {}
        self._seq: dict[str, int] = {}
        self.ignored_deltas = 0  # price changes before a snapshot
        self.drift = 0  # venue best_bid/best_ask disagreed with our book after a change
        self.untracked = 0  # events for tokens we do not stream (late after an unsubscribe, or a leak)

    def track(self, token_id: str, seq: int = 0) -> None:
        """Start keeping a book. ``seq`` continues a previous run's numbering (from the hash)."""
        if token_id not in self._books:
            self._books[token_id] = TokenBook(token_id)
            self._seq[token_id] = max(seq, self._seq.get(token_id, 0))

    def forget(self, token_id: str) -> None:
        self._books.pop(token_id, None)
        self._emitted.pop(token_id, None)
        # the seq is kept: if the token comes back its ticks keep increasing

    def invalidate(self, token_ids: Iterable[str]) -> None:
        """The connection carrying these tokens dropped: deltas wait for the fresh snapshot."""
        for tid in token_ids:
            book = self._books.get(tid)
            if book is not None:
                book.ready = False

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._books

    def book(self, token_id: str) -> TokenBook | None:
        return self._books.get(token_id)

    def ready(self, token_id: str) -> bool:
        """True once the token's book is seeded by a snapshot (and not voided since)."""
        book = self._books.get(token_id)
        return book is not None and book.ready

    def seq(self, token_id: str) -> int:
        return self._seq.get(token_id, 0)

    def apply(self, events: Iterable[MarketEvent], ts_recv: int) -> list[Tick]:
        """Apply a frame's events; one tick per token whose top changed (in first-touch order)."""
        touched: dict[str, int] = {}  # token -> venue ms of its latest event

        def touch(tid: str, ts: int) -> TokenBook | None:
            book = self._books.get(tid)
            if book is None:
                self.untracked += 1
            else:
                touched[tid] = max(ts, touched.get(tid, 0))
            return book

        for ev in events:
            if isinstance(ev, BookSnapshot):
                if (book := touch(ev.asset_id, ev.timestamp)) is not None:
                    book.apply_snapshot(ev)
            elif isinstance(ev, PriceChangeBatch):
                last_of: dict[str, tuple[TokenBook, PriceChange]] = {}
                for ch in ev.changes:
                    if (book := touch(ch.asset_id, ev.timestamp)) is not None:
                        if book.apply_change(ch):
                            last_of[ch.asset_id] = (book, ch)
                        else:
                            self.ignored_deltas += 1
                for book, ch in last_of.values():
                    self._check_drift(book, ch)
            elif isinstance(ev, LastTrade):
                if (book := touch(ev.asset_id, ev.timestamp)) is not None:
                    book.last = ev.price
            elif isinstance(ev, TickSizeChange) and (book := touch(ev.asset_id, ev.timestamp)) is not None:
                book.apply_tick_size(ev)
            # BestBidAsk carries nothing the book does not already know.
        return [t for tid, ts in touched.items() if (t := self._tick_if_changed(tid, ts, ts_recv))]

    def _check_drift(self, book: TokenBook, ch: PriceChange) -> None:
        # Checked after the whole batch against its last change per asset: whether the venue
        # reports the top after each change or after the batch, the two agree there.
        top = book.top()
        if not (_agrees(ch.best_bid, top.bid, 0.0) and _agrees(ch.best_ask, top.ask, 1.0)):
            self.drift += 1

    def _tick_if_changed(self, token_id: str, ts_event: int, ts_recv: int) -> Tick | None:
        top = self._books[token_id].top()
        if self._emitted.get(token_id) == top:
            return None
        self._emitted[token_id] = top
        self._seq[token_id] = seq = self._seq.get(token_id, 0) + 1
        return Tick(
            token_id=token_id, seq=seq, bid=top.bid, ask=top.ask, bid_size=top.bid_size,
            ask_size=top.ask_size, last=top.last, tick_size=top.tick_size,
            ts_event=ts_event or ts_recv, ts_recv=ts_recv,
        )


def _agrees(venue: float | None, ours: float | None, empty: float) -> bool:
    """The venue reports an empty side as 0 (bids) or 1 (asks); absent means "not said"."""
    return venue is None or venue == ours or (ours is None and venue == empty)
