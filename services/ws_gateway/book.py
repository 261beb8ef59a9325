"""L2 books per token and the ticks they produce (B2, B3, B5). Pure: no Redis, no sockets.

* A ``book`` snapshot replaces the token's levels; a ``price_change`` sets a level's new
  aggregate size (0 removes it). The venue does not sort levels best-first (best is the LAST
  entry), so the best bid is max(bids) and the best ask min(asks) -- never index 0.
* A ``tick_size_change`` drops the levels (they may be off the new grid) and ignores deltas until
  the next snapshot, as does a lost connection (:meth:`Books.invalidate`).
* The tick size comes from a snapshot that carries it (REST ``/book`` always does) and from
  ``tick_size_change``. A socket ``book`` event may carry none (docs/venue.md M2): a token whose
  tick is not known from either lands in :attr:`Books.tick_unknown` for the caller to read its
  REST book; until then its ticks carry :data:`DEFAULT_TICK_SIZE`.
* ``market_resolved`` events are kept in :attr:`Books.resolved` for the caller to pass on.
* :meth:`Books.apply` returns a :class:`~shared.ticks.Tick` per token whose top of book, last
  trade, tick size or staleness changed, with a per-token ``seq`` that only moves when a tick is
  emitted.
* The venue's own view of the top (``best_bid``/``best_ask`` on ``price_change``, and
  ``best_bid_ask`` events) is checked against ours; a token that disagrees lands in
  :attr:`Books.drifted` for the caller to reseed from REST ``/book``.
* A token not heard of for a while is reported by :meth:`Books.silent`; the caller verifies it
  (REST) and either :meth:`Books.heard_from` it or :meth:`Books.mark_stale` it, which emits a tick
  with ``stale=True``. Any later event for the token clears the flag (with a tick).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.ticks import Tick
from shared.venue.market_ws import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    MarketEvent,
    MarketResolved,
    PriceChange,
    PriceChangeBatch,
    TickSizeChange,
)

DEFAULT_TICK_SIZE = 0.01


class Top(NamedTuple):
    bid: float | None
    bid_size: float
    ask: float | None
    ask_size: float
    last: float | None
    tick_size: float
    stale: bool = False


@dataclass
class TokenBook:
    token_id: str
    bids: dict[float, float] = field(default_factory=dict)  # price -> size
    asks: dict[float, float] = field(default_factory=dict)
    last: float | None = None
    tick_size: float = DEFAULT_TICK_SIZE
    tick_known: bool = False  # tick_size came from the venue (a snapshot or tick_size_change), not the default
    ready: bool = False  # False until a snapshot: deltas without a base would build a wrong book
    stale: bool = False
    heard_ms: int = 0  # our clock (ts_recv) of the last event for this token

    # The best prices are cached: max/min over the levels on a snapshot and when the best level is
    # removed, a comparison on every other change (the hot path: one price_change per frame).
    _bb: float | None = None
    _ba: float | None = None

    def apply_snapshot(self, ev: BookSnapshot) -> None:
        self.bids = {lvl.price: lvl.size for lvl in ev.bids if lvl.size > 0}
        self.asks = {lvl.price: lvl.size for lvl in ev.asks if lvl.size > 0}
        self._bb = max(self.bids) if self.bids else None
        self._ba = min(self.asks) if self.asks else None
        if ev.tick_size:
            self.tick_size = ev.tick_size
            self.tick_known = True
        if self.last is None and ev.last_trade_price is not None:
            self.last = ev.last_trade_price  # a trade print, when one comes, is newer
        self.ready = True

    def apply_change(self, ch: PriceChange) -> bool:
        """False when ignored (no snapshot yet)."""
        if not self.ready:
            return False
        price = ch.price
        if ch.side == "BUY":
            if ch.size <= 0:
                if self.bids.pop(price, None) is not None and price == self._bb:
                    self._bb = max(self.bids) if self.bids else None
            else:
                self.bids[price] = ch.size
                if self._bb is None or price > self._bb:
                    self._bb = price
        elif ch.size <= 0:
            if self.asks.pop(price, None) is not None and price == self._ba:
                self._ba = min(self.asks) if self.asks else None
        else:
            self.asks[price] = ch.size
            if self._ba is None or price < self._ba:
                self._ba = price
        return True

    def apply_tick_size(self, ev: TickSizeChange) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bb = self._ba = None
        self.tick_size = ev.new_tick_size
        self.tick_known = True
        self.ready = False

    def top(self) -> Top:
        bid, ask = self._bb, self._ba
        # tuple.__new__: a NamedTuple's own constructor costs ~3x as much, and this runs per frame
        return tuple.__new__(Top, (bid, self.bids[bid] if bid is not None else 0.0,
                                   ask, self.asks[ask] if ask is not None else 0.0,
                                   self.last, self.tick_size, self.stale))

    def agrees(self, best_bid: float | None, best_ask: float | None) -> bool:
        """Whether the venue's top (None = not said) matches ours; only meaningful when ready."""
        return _agrees(best_bid, self._bb, 0.0) and _agrees(best_ask, self._ba, 1.0)


class Books:
    """Every tracked token's book, last emitted top and sequence number."""

    def __init__(self) -> None:
        self._books: dict[str, TokenBook] = {}
        self._emitted: dict[str, Top] = {}
        self._seq: dict[str, int] = {}
        self.ignored_deltas = 0  # price changes before a snapshot
        self.drift = 0  # venue best_bid/best_ask disagreed with our book after a change
        self.untracked = 0  # events for tokens we do not stream (late after an unsubscribe, or a leak)
        self.drifted: set[str] = set()  # tokens whose book disagreed with the venue: reseed from REST
        self.tick_unknown: set[str] = set()  # seeded from a book without tick_size: read the REST book for it
        self.resolved: list[MarketResolved] = []  # market_resolved events for the caller to pass on

    def track(self, token_id: str, seq: int = 0, now_ms: int = 0) -> None:
        """Start keeping a book. ``seq`` continues a previous run's numbering (from the hash);
        ``now_ms`` starts the silence clock (a token never heard of goes stale like any other)."""
        if token_id not in self._books:
            self._books[token_id] = TokenBook(token_id, heard_ms=now_ms)
            self._seq[token_id] = max(seq, self._seq.get(token_id, 0))

    def forget(self, token_id: str) -> None:
        self._books.pop(token_id, None)
        self._emitted.pop(token_id, None)
        self.drifted.discard(token_id)
        self.tick_unknown.discard(token_id)
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

    def tokens(self) -> list[str]:
        return list(self._books)

    def stale_tokens(self) -> list[str]:
        return [t for t, b in self._books.items() if b.stale]

    def silent(self, now_ms: int, after_ms: int) -> list[str]:
        """Tracked, not yet stale tokens with no event (or verification) for ``after_ms``.

        A token never heard of counts from when it was tracked (``heard_from`` at track time).
        """
        cutoff = now_ms - after_ms
        return [t for t, b in self._books.items() if not b.stale and b.heard_ms < cutoff]

    def heard_from(self, token_ids: Iterable[str], now_ms: int) -> None:
        """The token is known to be current (an event, a REST check that agreed, or just tracked)."""
        for tid in token_ids:
            book = self._books.get(tid)
            if book is not None:
                book.heard_ms = max(book.heard_ms, now_ms)

    def reseed(self, snap: BookSnapshot, ts_recv: int) -> tuple[list[Tick], bool]:
        """Apply a REST book. Returns (ticks, whether our book already matched it level for level).

        A match just confirms the token (a quiet market); a mismatch replaces the book and clears
        its drift mark.
        """
        book = self._books.get(snap.asset_id)
        if book is None:
            self.untracked += 1
            return [], False
        matched = (book.ready and book.bids == {lv.price: lv.size for lv in snap.bids if lv.size > 0}
                   and book.asks == {lv.price: lv.size for lv in snap.asks if lv.size > 0})
        self.tick_unknown.discard(snap.asset_id)  # REST said what it knows; a book without a tick says no more
        if matched and snap.tick_size and not (book.tick_known and book.tick_size == snap.tick_size):
            return self.apply([snap], ts_recv), matched  # same levels, but the tick is news: a tick says so
        if matched:
            self.heard_from([snap.asset_id], ts_recv)
            if not book.stale:
                return [], True
        return self.apply([snap], ts_recv), matched

    def mark_stale(self, token_ids: Iterable[str], ts_recv: int) -> list[Tick]:
        """Flag tokens as stale; one tick per token whose flag changed (ts_event = ts_recv)."""
        out = []
        for tid in token_ids:
            book = self._books.get(tid)
            if book is not None and not book.stale:
                book.stale = True
                if (t := self._tick_if_changed(tid, ts_recv, ts_recv)) is not None:
                    out.append(t)
        return out

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
                    self.drifted.discard(ev.asset_id)
                    if not book.tick_known:
                        self.tick_unknown.add(ev.asset_id)
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
            elif isinstance(ev, TickSizeChange):
                if (book := touch(ev.asset_id, ev.timestamp)) is not None:
                    book.apply_tick_size(ev)
                    self.drifted.discard(ev.asset_id)  # the reseed comes with the fresh snapshot
                    self.tick_unknown.discard(ev.asset_id)
            elif isinstance(ev, BestBidAsk):
                if (book := touch(ev.asset_id, ev.timestamp)) is not None and book.ready \
                        and not book.agrees(ev.best_bid, ev.best_ask):
                    # Nothing new for the book; a check of it (the venue's top after its last change).
                    self.drift += 1
                    self.drifted.add(ev.asset_id)
            elif isinstance(ev, MarketResolved):
                self.resolved.append(ev)
        for tid in touched:
            book = self._books[tid]
            if book.ready:  # a delta ignored for want of a snapshot says nothing about the book
                book.heard_ms = ts_recv
                book.stale = False
        return [t for tid, ts in touched.items() if (t := self._tick_if_changed(tid, ts, ts_recv))]

    def _check_drift(self, book: TokenBook, ch: PriceChange) -> None:
        # Checked after the whole batch against its last change per asset: whether the venue
        # reports the top after each change or after the batch, the two agree there.
        if not book.agrees(ch.best_bid, ch.best_ask):
            self.drift += 1
            self.drifted.add(book.token_id)

    def _tick_if_changed(self, token_id: str, ts_event: int, ts_recv: int) -> Tick | None:
        top = self._books[token_id].top()
        if self._emitted.get(token_id) == top:
            return None
        self._emitted[token_id] = top
        self._seq[token_id] = seq = self._seq.get(token_id, 0) + 1
        return Tick(
            token_id=token_id, seq=seq, bid=top.bid, ask=top.ask, bid_size=top.bid_size,
            ask_size=top.ask_size, last=top.last, tick_size=top.tick_size,
            ts_event=ts_event or ts_recv, ts_recv=ts_recv, stale=top.stale,
        )


def _agrees(venue: float | None, ours: float | None, empty: float) -> bool:
    """The venue reports an empty side as 0 (bids) or 1 (asks); absent means "not said"."""
    return venue is None or venue == ours or (ours is None and venue == empty)
