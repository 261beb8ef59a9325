"""A session's pending trades (services/maker_worker/trades.py): what they add to the settled
balance, their snapshot form, and how a FAILED one is taken out of the strategy."""

from __future__ import annotations

import asyncio

import pytest

from services.maker_worker.fills import FillBook
from services.maker_worker.trades import Followed, PendingTrades, TradeFollower, void
from services.maker_worker.venue_reads import VenueReads
from services.maker_worker.volatility import State, VolatilityStrategy
from shared.config import ExecutionSection, MakerStrategySection, RunParamsSection
from shared.venue.errors import VenueUnavailable


def strategy() -> VolatilityStrategy:
    return VolatilityStrategy(MakerStrategySection(), RunParamsSection(), ExecutionSection(), 0)


def test_pending_trades_add_what_they_bring_and_take() -> None:
    p = PendingTrades()
    p.add(Followed("b1", "BUY", 10, 0.48, "MATCHED"))
    p.add(Followed("b2", "BUY", 5, 0.50, "MINED"))
    p.add(Followed("s1", "SELL", 4, 0.55, "RETRYING", avg_cost=0.48))
    p.add(Followed("done", "BUY", 7, 0.5, "CONFIRMED"))  # settled already: nothing to follow
    assert (p.delta(), p.selling(), sorted(p.buys())) == (11, 4, ["b1", "b2"])
    assert p.update("b1", "MATCHED") is None  # no change
    assert p.update("b1", "MINED") is not None
    assert p.update("b1", "CONFIRMED") is not None
    assert p.update("b1", "CONFIRMED") is None  # gone: final
    assert p.update("b2", "SOMETHING") is None  # a status we do not know changes nothing
    assert (p.delta(), sorted(p.trades)) == (1, ["b2", "s1"])
    again = PendingTrades.load(p.dump())
    assert again.trades == p.trades
    assert not PendingTrades.load(None)


def test_a_failed_buy_leaves_the_position_and_the_cost_of_the_other_buys() -> None:
    s = strategy()
    s.on_fill("BUY", 10, 0.40, 0)
    s.on_fill("BUY", 10, 0.60, 0)
    assert s.avg_cost == pytest.approx(0.50)
    void(s, Followed("t", "BUY", 10, 0.60, "FAILED"))
    assert (s.position, s.avg_cost, s.state) == (10, pytest.approx(0.40), State.LONG)
    void(s, Followed("u", "BUY", 10, 0.40, "FAILED"))
    assert (s.position, s.avg_cost, s.state) == (0, 0, State.FLAT)


def test_a_failed_sell_gives_the_shares_back_and_undoes_its_pnl() -> None:
    s = strategy()
    s.on_fill("BUY", 10, 0.40, 0)
    s.on_fill("SELL", 10, 0.50, 0)  # flat, +1.00, the cost basis reset
    assert (s.position, s.avg_cost, s.realized_pnl) == (0, 0, pytest.approx(1.0))
    void(s, Followed("t", "SELL", 10, 0.50, "FAILED", avg_cost=0.40))
    assert (s.position, s.avg_cost, s.realized_pnl, s.state) == (10, pytest.approx(0.40), pytest.approx(0.0),
                                                                 State.LONG)


def test_a_failed_taker_trade_gives_its_fee_back() -> None:
    """The venue takes a taker's fee only when the trade settles: a FAILED one cost nothing."""
    s = strategy()
    s.on_fill("BUY", 10, 0.40, 0, fee=0.12)
    assert (s.fees, s.realized_pnl) == (pytest.approx(0.12), pytest.approx(-0.12))
    void(s, Followed("t", "BUY", 10, 0.40, "FAILED", fee=0.12))
    assert (s.position, s.fees, s.realized_pnl) == (0, pytest.approx(0.0), pytest.approx(0.0))


async def test_an_orders_trades_read_waits_out_the_venues_restart_instead_of_failing() -> None:
    """The trades endpoint answers 425 while the venue restarts (docs/venue.md O1): the read that
    books an order's fills by trade waits the window out (VenueReads.read) instead of failing the
    placement or booking the shares without their trade, which would then never be followed."""

    class Restarting:
        calls = 0

        async def trades(self, trade_ids: object, strict: bool = False) -> dict[str, object]:
            assert strict  # a read that hid the restart as "not listed yet" would book without the trade
            self.calls += 1
            if self.calls <= 2:
                raise VenueUnavailable("the matching engine is restarting", status=425, retry_after=0.01,
                                       restriction="restarting")
            return {}  # not listed yet: booked on a later read

    class Host:
        strategy = strategy()

        async def snapshot(self, *messages: object) -> None:
            return None

    venue, host, stop = Restarting(), Host(), asyncio.Event()
    follower = TradeFollower(venue, lambda: host.strategy, host.snapshot, "tok", 1, "w1")  # type: ignore[arg-type]
    reads = VenueReads(venue, "tok", follower, stop, window_max_s=30.0)  # type: ignore[arg-type]
    book = FillBook(host, venue, follower, "tok", 1, "w1", reads.pause, reads.read)  # type: ignore[arg-type]
    await book.book("BUY", "0xorder", "intent-1", ["trade-1"], 10.0, 0.5)
    assert venue.calls == 3
    assert host.strategy.position == 0.0  # nothing booked without its trade
