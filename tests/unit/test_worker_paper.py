"""The paper fill model (docs/strategy.md section 12) and the paper executor."""

from __future__ import annotations

import pytest

from services.maker_worker.paper import NO_BALANCE, NO_MATCH, NOT_FULL, PaperExecutor, PaperReject, PaperVenue
from shared.ticks import Tick


def book(bid: float | None, ask: float | None, bid_size: float = 0, ask_size: float = 0, seq: int = 1) -> Tick:
    return Tick("t", seq, bid, ask, bid_size, ask_size, None, 0.01, 0, seq)


def test_buy_fills_at_the_ask_up_to_its_size_and_fak_kills_the_rest() -> None:
    v = PaperVenue()
    v.observe(book(0.48, 0.50, ask_size=4), 0)
    order, fills = v.place("t", "BUY", 0.52, 10, 0.01, "FAK", 0)
    assert [(f.price, f.size) for f in fills] == [(0.50, 4)]
    assert order.status == "MATCHED"
    assert v.positions["t"] == 4


def test_what_we_took_is_remembered_until_the_book_changes() -> None:
    v = PaperVenue()
    v.observe(book(0.48, 0.50, ask_size=4), 0)
    v.place("t", "BUY", 0.50, 4, 0.01, "FAK", 0)
    with pytest.raises(PaperReject, match="no orders found"):
        v.place("t", "BUY", 0.50, 4, 0.01, "FAK", 0)
    v.observe(book(0.48, 0.50, ask_size=4, seq=2), 1)
    assert v.place("t", "BUY", 0.50, 4, 0.01, "FAK", 1)[1]


def test_unknown_size_fills_everything_and_sell_uses_the_bid() -> None:
    v = PaperVenue()
    v.observe(book(0.48, 0.50), 0)
    v.place("t", "BUY", 0.50, 100, 0.01, "FAK", 0)
    _, fills = v.place("t", "SELL", 0.47, 100, 0.01, "FAK", 0)
    assert [(f.price, f.size) for f in fills] == [(0.48, 100)]
    assert v.positions["t"] == 0


def test_no_cross_fak_and_fok_rejections_use_the_venue_texts() -> None:
    v = PaperVenue()
    v.observe(book(0.48, 0.50, ask_size=3), 0)
    with pytest.raises(PaperReject) as exc:
        v.place("t", "BUY", 0.49, 5, 0.01, "FAK", 0)
    assert str(exc.value) == NO_MATCH
    with pytest.raises(PaperReject) as exc:
        v.place("t", "BUY", 0.50, 5, 0.01, "FOK", 0)
    assert str(exc.value) == NOT_FULL


def test_gtc_rests_and_fills_at_its_own_price_when_crossed() -> None:
    v = PaperVenue()
    v.observe(book(0.48, 0.50), 0)
    order, fills = v.place("t", "BUY", 0.45, 10, 0.01, "GTC", 0)
    assert not fills
    assert order.status == "LIVE"
    assert v.observe(book(0.40, 0.47, seq=2), 1) == []
    later = v.observe(book(0.40, 0.44, seq=3), 2)
    assert [(f.price, f.size) for f in later] == [(0.45, 10)]
    assert order.status == "MATCHED"


def test_balance_and_tick_rejections() -> None:
    v = PaperVenue(cash=4.0)
    v.observe(book(0.48, 0.50), 0)
    with pytest.raises(PaperReject) as exc:
        v.place("t", "BUY", 0.50, 10, 0.01, "FAK", 0)
    assert str(exc.value) == NO_BALANCE
    with pytest.raises(PaperReject) as exc:
        v.place("t", "SELL", 0.48, 1, 0.01, "FAK", 0)
    assert str(exc.value) == NO_BALANCE
    with pytest.raises(PaperReject, match="breaks minimum tick size rule"):
        v.place("t", "BUY", 0.505, 1, 0.01, "FAK", 0)
    v.place("t", "BUY", 0.50, 8, 0.01, "FAK", 0)
    assert v.cash == pytest.approx(0.0)


async def test_paper_executor_reads_the_book_and_reports_fills() -> None:
    latest = {"t": book(0.48, 0.50, ask_size=6)}
    ex = PaperExecutor(PaperVenue(), latest.get, clock=lambda: 1.0)
    res = await ex.place("t", "BUY", 0.50, 10, 0.01)
    assert (res.ok, res.filled_size, res.avg_price, res.status) == (True, 6, 0.50, "matched")
    assert await ex.position("t") == 6
    rej = await ex.place("t", "SELL", 0.49, 1, 0.01)
    assert (rej.ok, rej.status) == (False, "rejected")
    rest = await ex.place("t", "SELL", 0.55, 6, 0.01, order_type="GTC")
    assert rest.ok
    assert rest.filled_size == 0
    assert [o["id"] for o in await ex.open_orders("t")] == [rest.order_id]
    await ex.cancel_token_orders("t")
    assert await ex.open_orders("t") == []
    await ex.adopt_position("t", 3)
    assert await ex.position("t") == 3
