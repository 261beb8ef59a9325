"""A session's pending trades (services/maker_worker/trades.py): what they add to the settled
balance, their snapshot form, and how a FAILED one is taken out of the strategy."""

from __future__ import annotations

import pytest

from services.maker_worker.trades import Followed, PendingTrades, void
from services.maker_worker.volatility import State, VolatilityStrategy
from shared.config import ExecutionSection, MakerStrategySection, RunParamsSection


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
