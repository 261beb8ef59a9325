"""The execution layer's decisions (services/maker_worker/execution.py; docs/strategy.md section 14),
one test per rule, without I/O."""

from __future__ import annotations

import pytest

from services.maker_worker.execution import (
    Bounds,
    OrderWork,
    Placement,
    fit_to_venue,
    is_balance_error,
    order_type,
    slice_sizes,
)
from services.maker_worker.restbook import tick_from_rest_book
from services.maker_worker.strategy import OrderIntent
from shared.config import ExecutionSection
from shared.venue.market_ws import MarketFrameError

NO_BALANCE = "not enough balance / allowance"


def x(**kw: object) -> ExecutionSection:
    return ExecutionSection.model_validate(kw)


def buy(price: float = 0.50, size: float = 10) -> OrderIntent:
    return OrderIntent("BUY", price, size, "test")


def sell(price: float = 0.60, size: float = 10, exit: bool = False) -> OrderIntent:
    return OrderIntent("SELL", price, size, "test", exit=exit)


# --- slicing --------------------------------------------------------------------------------------

def test_a_total_up_to_slice_max_goes_out_whole() -> None:
    assert slice_sizes(50, x()) == [50]
    assert slice_sizes(3, x()) == [3]  # under order_slice_min: cannot be split, goes whole


def test_larger_totals_are_split_in_equal_slices_within_the_bounds() -> None:
    assert slice_sizes(120, x()) == [40, 40, 40]
    assert slice_sizes(51, x()) == [25.5, 25.5]
    assert slice_sizes(100.01, x(order_slice_min=5, order_slice_max=50)) == [33.33, 33.33, 33.35]
    assert slice_sizes(12, x(order_slice_min=5, order_slice_max=5)) == [6, 6]  # never under the min


# --- venue minimums -------------------------------------------------------------------------------

def test_a_marketable_buy_under_one_dollar_is_raised_to_reach_it() -> None:
    assert fit_to_venue("BUY", 0.40, 2, marketable=True) == (2.5, "")
    assert fit_to_venue("BUY", 0.40, 2, marketable=True, cap_size=2.0)[0] == 0.0


def test_a_marketable_sell_under_one_dollar_is_not_sent() -> None:
    size, why = fit_to_venue("SELL", 0.10, 5, marketable=True)
    assert size == 0.0
    assert "$1 minimum" in why


def test_an_order_that_would_rest_needs_five_shares() -> None:
    assert fit_to_venue("BUY", 0.40, 4, marketable=False)[0] == 0.0
    assert fit_to_venue("BUY", 0.40, 5, marketable=False) == (5.0, "")


def test_order_type_rests_only_with_a_wait_and_enough_size() -> None:
    assert order_type(10, wait_sec=5) == "GTC"
    assert order_type(4.99, wait_sec=5) == "FAK"
    assert order_type(10, wait_sec=0) == "FAK"


def test_balance_errors_are_recognised() -> None:
    assert is_balance_error(NO_BALANCE)
    assert not is_balance_error("order couldn't be fully filled")


# --- prices: concession, bounds, tick ------------------------------------------------------------

def test_buy_concedes_price_tolerance_step_per_attempt_up_to_the_cap() -> None:
    w = OrderWork(buy(0.50), x(price_tolerance_step=0.01), Bounds(cap=0.52), 0)
    assert [w.price_for(a, 0.01, None) for a in range(4)] == [0.50, 0.51, 0.52, 0.52]


def test_conservative_sell_concedes_down_to_the_floor() -> None:
    w = OrderWork(sell(0.60), x(sell_mode="conservative", price_tolerance_step=0.01), Bounds(floor=0.585), 0)
    assert [w.price_for(a, 0.01, None) for a in range(4)] == [0.60, 0.59, 0.59, 0.59]


def test_aggressive_sell_uses_aggressive_step_and_stops_at_the_timeout() -> None:
    ex = x(sell_mode="aggressive", aggressive_step=0.02, aggressive_timeout=10, retry_attempts=0)
    w = OrderWork(sell(0.60), ex, Bounds(floor=0.50), started_ms=0)
    assert [w.price_for(a, 0.01, None) for a in range(3)] == [0.60, 0.58, 0.56]
    w.attempt = 5  # more than retry_attempts: the timeout decides, not the count
    assert w.attempts_left(9_999)
    assert not w.attempts_left(10_000)


def test_exit_sells_from_the_current_bid_never_below_the_exit_floor() -> None:
    w = OrderWork(sell(0.40, exit=True), x(exit_sell_mode="aggressive", price_tolerance_step=0.05,
                                           exit_floor_price=0.30), Bounds(floor=0.30), 0, exit_attempt_base=1)
    assert w.price_for(0, 0.01, 0.42) == 0.37  # attempt base 1: one concession already
    assert w.price_for(3, 0.01, 0.42) == 0.30


def test_prices_follow_a_tick_size_change() -> None:
    w = OrderWork(buy(0.5), x(price_tolerance_step=0.0015), Bounds(cap=0.9), 0)
    assert w.price_for(1, 0.001, None) == 0.502  # 0.5015 rounded up on the new 0.001 grid
    assert w.price_for(1, 0.01, None) == 0.51


# --- the work loop --------------------------------------------------------------------------------

def place(w: OrderWork, now: int = 0, bid: float | None = 0.49, ask: float | None = 0.50,
          held: float | None = None, tick: float = 0.01) -> Placement:
    p = w.next(now, tick, bid, ask, held)
    assert p is not None, w.gave_up
    return p


def test_a_full_fill_ends_the_work() -> None:
    w = OrderWork(buy(), x(), Bounds(cap=0.9), 0)
    p = place(w)
    assert (p.price, p.size, p.order_type, p.marketable) == (0.50, 10, "GTC", True)
    w.on_outcome(p, 10, 0.50)
    assert w.done
    assert (w.filled, w.avg_price) == (10, 0.50)
    assert w.next(0, 0.01, 0.49, 0.50) is None


def test_no_fill_concedes_and_gives_up_after_retry_attempts() -> None:
    w = OrderWork(buy(), x(retry_attempts=2), Bounds(cap=0.9), 0)
    prices = []
    for _ in range(3):
        p = place(w)
        prices.append(p.price)
        w.on_outcome(p, 0, 0, "no orders found to match with FAK order")
    assert prices == [0.50, 0.51, 0.52]
    assert w.next(0, 0.01, 0.49, 0.50) is None
    assert "no fill after 3 attempt(s)" in w.gave_up


def test_a_partial_fill_sends_the_rest_at_the_next_price() -> None:
    w = OrderWork(buy(size=10), x(), Bounds(cap=0.9), 0)
    p = place(w)
    w.on_outcome(p, 4, 0.50)
    p2 = place(w)
    assert (p2.size, p2.price) == (6, 0.51)


def test_balance_reject_shrinks_to_what_is_affordable_without_conceding() -> None:
    w = OrderWork(buy(0.50, 10), x(), Bounds(cap=0.9), 0)
    p = place(w)
    w.on_outcome(p, 0, 0, NO_BALANCE, affordable=6.0)  # $3 cash / 0.50
    p2 = place(w)
    assert (p2.size, p2.price) == (5.88, 0.50)  # 6 x 0.98 margin; same price
    w.on_outcome(p2, 5.88, 0.50)
    p3 = place(w)  # the rest of the slice, still at most the affordable size
    assert p3.size == pytest.approx(4.12)


def test_balance_reject_gives_up_when_nothing_is_affordable() -> None:
    w = OrderWork(buy(0.50, 10), x(), Bounds(cap=0.9), 0)
    w.on_outcome(place(w), 0, 0, NO_BALANCE, affordable=0.0)
    assert w.next(0, 0.01, 0.49, 0.50) is None
    assert "nothing affordable" in w.gave_up


def test_balance_reject_stops_after_max_shrinks() -> None:
    w = OrderWork(buy(0.50, 10), x(), Bounds(cap=0.9), 0)
    for _ in range(4):
        p = w.next(0, 0.01, 0.49, 0.50)
        if p is None:
            break
        w.on_outcome(p, 0, 0, NO_BALANCE, affordable=100.0)
    assert w.done
    assert "after 3 shrinks" in w.gave_up


def test_a_sell_asks_only_for_what_is_held() -> None:
    w = OrderWork(sell(0.49, 10), x(), Bounds(floor=0.40), 0)
    p = place(w, held=7.456)
    assert p.size == 7.45
    w2 = OrderWork(sell(0.49, 10), x(), Bounds(floor=0.40), 0)
    assert w2.next(0, 0.01, 0.49, 0.50, held=0.0) is None
    assert w2.gave_up == "nothing held to sell"


def test_a_small_order_that_cannot_rest_goes_fak() -> None:
    w = OrderWork(buy(0.50, 4), x(), Bounds(cap=0.9), 0)
    p = place(w)
    assert (p.order_type, p.marketable) == ("FAK", True)


def test_slices_are_worked_one_after_the_other() -> None:
    w = OrderWork(buy(0.50, 120), x(), Bounds(cap=0.9), 0)
    sizes = []
    while (p := w.next(0, 0.01, 0.49, 0.50)) is not None:
        sizes.append((p.slice_no, p.size))
        w.on_outcome(p, p.size, p.price)
    assert sizes == [(0, 40), (1, 40), (2, 40)]
    assert w.filled == 120


# --- REST books (B6) ------------------------------------------------------------------------------

def test_a_rest_book_becomes_a_tick_with_the_best_levels_computed() -> None:
    raw = {"market": "0xabc", "asset_id": "T1", "timestamp": "1700000000000", "hash": "h", "tick_size": "0.001",
           "bids": [{"price": "0.40", "size": "10"}, {"price": "0.45", "size": "5"}, {"price": "0.44", "size": "0"}],
           "asks": [{"price": "0.60", "size": "7"}, {"price": "0.55", "size": "3"}], "last_trade_price": "0.5"}
    t = tick_from_rest_book("T1", raw, 3, 1_700_000_000_500)
    assert (t.bid, t.bid_size, t.ask, t.ask_size, t.tick_size, t.last, t.stale) == (0.45, 5, 0.55, 3, 0.001, 0.5, False)
    assert (t.seq, t.ts_event, t.ts_recv) == (3, 1_700_000_000_000, 1_700_000_000_500)


def test_a_rest_book_of_another_token_or_garbage_is_refused() -> None:
    with pytest.raises(MarketFrameError):
        tick_from_rest_book("T1", {"asset_id": "T2", "bids": [], "asks": []}, 1, 0)
    with pytest.raises(MarketFrameError):
        tick_from_rest_book("T1", ["not", "a", "book"], 1, 0)


async def test_rest_poller_stays_inside_the_orderbook_budget() -> None:
    from services.maker_worker.restbook import RestBooks
    from shared.config import OrderbookSection

    asked: list[str] = []
    clock = [0.0]

    async def fetch(token: str) -> dict[str, object]:
        asked.append(token)
        if token == "bad":
            raise OSError("connection refused")
        return {"asset_id": token, "bids": [{"price": "0.4", "size": "1"}], "asks": [{"price": "0.6", "size": "1"}]}

    books = RestBooks(fetch, OrderbookSection(refresh_sec=2, max_fetch_per_loop=10, cache_max_items=12),
                      clock=lambda: clock[0])
    for i in range(25):
        books.want(f"t{i:02d}")
    books.want("bad")
    seen: list[set[str]] = []
    for _ in range(3):
        asked.clear()
        clock[0] += 2
        await books.poll_once(0)
        assert len(asked) == 10  # never more than max_fetch_per_loop per loop
        seen.append(set(asked))
    assert len(seen[0] | seen[1] | seen[2]) == 26  # every wanted token once before any twice
    assert len(books.cache) == 12  # cache_max_items
    assert books.failures >= 1
    assert books.latest("bad") is None
    books.unwant("t00")
    assert "t00" not in books.due()


def test_transient_venue_errors_are_told_apart_from_answers() -> None:
    from services.maker_worker.executor import is_transient
    from shared.venue.errors import VenueAmbiguous, VenueRejected, VenueSetupError, VenueUnavailable

    assert is_transient(VenueUnavailable("throttled", status=429, retry_after=1))
    assert is_transient(VenueUnavailable("unavailable", status=503))
    assert is_transient(VenueUnavailable("restarting", status=425, restriction="restarting"))
    assert is_transient(VenueAmbiguous("no answer"))
    assert is_transient(TimeoutError())
    assert not is_transient(VenueRejected("bad", status=400))
    assert not is_transient(VenueRejected("not found", status=404))
    assert not is_transient(VenueSetupError("credentials refused", "fix them"))
    assert not is_transient(ValueError("bad"))


def test_market_facts_come_from_the_start_params_with_v1_and_5_by_default() -> None:
    from services.maker_worker.executor import MarketFacts
    from shared.venue.errors import UnknownMarketVersion
    from shared.venue.fees import FeeSchedule

    assert MarketFacts.from_params({}) == MarketFacts("v1", 5.0, False, "")
    assert MarketFacts.from_params({"market_version": "V2", "min_order_size": "15", "neg_risk": True,
                                    "condition_id": "0xab"}) == MarketFacts("v2", 15.0, True, "0xab")
    with pytest.raises(UnknownMarketVersion):
        MarketFacts.from_params({"market_version": "v3"})
    with pytest.raises(ValueError, match="min_order_size"):
        MarketFacts.from_params({"min_order_size": -1})
    # the taker fee schedule rides along when the signal knew it; nonsense is refused, not booked
    assert MarketFacts.from_params({"fee_rate": 0.05}).fees == FeeSchedule(0.05, 1.0)
    assert MarketFacts.from_params({"fee_rate": "0.07", "fee_exponent": "2"}).fees == FeeSchedule(0.07, 2.0)
    assert MarketFacts.from_params({}).fees is None
    for bad in ({"fee_rate": 1.5}, {"fee_rate": -0.01}, {"fee_rate": 0.05, "fee_exponent": -1}):
        with pytest.raises(ValueError, match="fee schedule"):
            MarketFacts.from_params(bad)
