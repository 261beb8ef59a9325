"""sim_exchange matching, accounts and the Data-API feed (pure, no server)."""

from __future__ import annotations

import itertools

import pytest

from services.sim_exchange.feed import FeedError, TradeFeed
from services.sim_exchange.market import MarketSim, set_levels
from services.sim_exchange.matching import Matcher, OrderError, OrderRequest, taker_fee

ME = "0x00000000000000000000000000000000000000aa"
_ids = itertools.count()


def setup() -> tuple[MarketSim, Matcher, str]:
    sim = MarketSim(seed=1, count=1, volatility=0.0)
    token = sim.markets[0].yes.token_id
    set_levels(sim.by_token[token], [(0.48, 10), (0.47, 20)], [(0.50, 10), (0.51, 20), (0.53, 100)])
    return sim, Matcher(sim, starting_cash=100.0, now=lambda: 1_700_000_000.0), token


def req(token: str, side: str, price: float, size: float, order_type: str = "GTC", **kw: object) -> OrderRequest:
    return OrderRequest(f"0x{next(_ids):064x}", token, side, price, size, "key", ME, order_type, **kw)  # type: ignore[arg-type]


def test_marketable_buy_walks_levels_at_their_prices_and_consumes_them() -> None:
    sim, m, token = setup()
    order, fills = m.place(req(token, "BUY", 0.52, 25))
    assert [(f.price, f.size, f.role) for f in fills] == [(0.50, 10, "TAKER"), (0.51, 15, "TAKER")]
    assert order.status == "MATCHED"
    assert order.size_matched == 25
    assert sim.by_token[token].asks == {0.51: 5.0, 0.53: 100.0}
    acct = m.accounts[ME]
    assert acct.cash == pytest.approx(100 - 5.0 - 7.65)
    assert acct.positions[token] == 25


def test_gtc_remainder_rests_and_shows_in_the_displayed_book() -> None:
    _, m, token = setup()
    order, fills = m.place(req(token, "BUY", 0.50, 15))
    assert sum(f.size for f in fills) == 10
    assert order.status == "LIVE"
    assert order.remaining == 5
    bids, asks = m.displayed(token)
    assert bids[0.50] == 5
    assert 0.50 not in asks


def test_resting_order_fills_as_maker_at_its_price_when_the_book_crosses() -> None:
    sim, m, token = setup()
    order, fills = m.place(req(token, "BUY", 0.45, 10))
    assert not fills
    assert order.status == "LIVE"
    assert m.sweep(token) == []
    set_levels(sim.by_token[token], [(0.40, 50)], [(0.44, 4), (0.45, 3), (0.46, 50)])
    made = m.sweep(token)
    assert [(f.price, f.size, f.role) for _, f in made] == [(0.45, 4, "MAKER"), (0.45, 3, "MAKER")]
    assert order.size_matched == 7
    assert order.status == "LIVE"
    assert sim.by_token[token].asks == {0.46: 50.0}


def test_fok_is_all_or_nothing_and_fak_cancels_the_rest() -> None:
    sim, m, token = setup()
    with pytest.raises(OrderError, match="FOK orders are fully filled or killed"):
        m.place(req(token, "BUY", 0.51, 31, "FOK"))
    assert sim.by_token[token].asks[0.50] == 10  # nothing consumed
    order, fills = m.place(req(token, "BUY", 0.51, 40, "FAK"))
    assert sum(f.size for f in fills) == 30
    assert order.status == "MATCHED"
    assert order.remaining == 10
    assert m.open_orders() == []
    with pytest.raises(OrderError, match="no orders found to match with FAK order"):
        m.place(req(token, "BUY", 0.30, 10, "FAK"))


@pytest.mark.parametrize(("side", "price", "size", "kw", "message"), [
    ("BUY", 0.455, 10, {}, r"Price \(0.455\) breaks minimum tick size rule: 0.01"),
    ("BUY", 0.0, 10, {}, "breaks minimum tick size rule"),
    ("BUY", 0.99 + 0.01, 10, {}, "breaks minimum tick size rule"),
    ("BUY", 0.40, 4, {}, r"Size \(4\) lower than the minimum: 5"),
    ("BUY", 0.50, 1.5, {}, r"invalid amount for a marketable BUY order \(\$0.75\), min size: \$1"),
    ("BUY", 0.50, 10, {"post_only": True}, "invalid post-only order: order crosses book"),
    ("BUY", 0.40, 300, {}, "not enough balance / allowance"),
    ("SELL", 0.60, 10, {}, "not enough balance / allowance"),
])
def test_validation_errors_use_the_venue_texts(side: str, price: float, size: float, kw: dict[str, object],
                                               message: str) -> None:
    _, m, token = setup()
    with pytest.raises(OrderError, match=message):
        m.place(req(token, side, price, size, **kw))
    assert m.orders == {}


def test_duplicate_order_and_open_orders_reserve_balance() -> None:
    _, m, token = setup()
    first = req(token, "BUY", 0.40, 200)  # reserves 80 of 100
    m.place(first)
    with pytest.raises(OrderError, match=r"is invalid. Duplicated."):
        m.place(first)
    with pytest.raises(OrderError, match="not enough balance"):
        m.place(req(token, "BUY", 0.40, 60))
    assert m.cancel(first.order_id) is None
    assert m.cancel(first.order_id) is not None
    m.place(req(token, "BUY", 0.40, 60))


def test_sell_needs_shares_and_pays_proceeds_minus_fee() -> None:
    sim, m, token = setup()
    sim.markets[0].fee_rate = 0.04
    m.place(req(token, "BUY", 0.50, 10))
    cash_after_buy = m.accounts[ME].cash
    assert cash_after_buy == pytest.approx(100 - 5 - taker_fee(10, 0.5, 0.04, 1.0))
    _, fills = m.place(req(token, "SELL", 0.48, 10))
    assert fills[0].price == 0.48
    assert fills[0].fee == pytest.approx(10 * 0.04 * 0.48 * 0.52, abs=1e-5)
    assert m.accounts[ME].positions[token] == 0
    assert m.accounts[ME].cash == pytest.approx(cash_after_buy + 4.8 - fills[0].fee)


def test_gtd_orders_expire() -> None:
    _, m, token = setup()
    clock = [1_700_000_000.0]
    m.now = lambda: clock[0]
    order, _ = m.place(req(token, "BUY", 0.40, 10, "GTD", expiration=1_700_000_061))  # past the 1-minute threshold
    assert m.expire() == []
    clock[0] = 1_700_000_061.0
    assert [o.id for o in m.expire()] == [order.id]
    assert order.status == "CANCELED"
    assert order.cancel_reason == "expired"


def test_feed_trades_and_activity_rules() -> None:
    sim, _, token = setup()
    feed = TradeFeed(sim)
    for i in range(5):
        feed.add(feed.make_row({"proxyWallet": ME.upper(), "side": "BUY" if i % 2 else "SELL", "asset": token,
                                "size": i + 1, "price": 0.5, "timestamp": 1000 + i}))
    feed.add(feed.make_row({"proxyWallet": ME, "side": "BUY", "asset": token, "size": 9, "price": 0.5,
                            "timestamp": 2000}), maker=True)
    rows = feed.trades({"user": ME})
    assert [r["timestamp"] for r in rows] == [1004, 1003, 1002, 1001, 1000]  # newest first, maker fill hidden
    assert rows[0]["conditionId"] == sim.markets[0].condition_id
    assert rows[0]["outcome"] == "Yes"
    assert len(feed.trades({"user": ME, "takerOnly": "false"})) == 6
    assert [r["size"] for r in feed.trades({"side": "BUY", "limit": "1", "offset": "1"})] == [2.0]
    assert [r["timestamp"] for r in feed.trades({"start": "1003", "end": "1004"})] == [1004, 1003]
    with pytest.raises(FeedError):
        feed.trades({"offset": "10001"})
    assert len(feed.trades({"limit": "999999"})) == 5
    act = feed.activity({"user": ME, "sortDirection": "ASC", "limit": "2"})
    assert [a["timestamp"] for a in act] == [1000, 1001]
    assert act[0]["type"] == "TRADE"
    assert act[0]["usdcSize"] == 0.5
    with pytest.raises(FeedError, match="user is required"):
        feed.activity({})
    with pytest.raises(FeedError):
        feed.activity({"user": ME, "offset": "5001"})
    with pytest.raises(FeedError, match="missing 'price'"):
        feed.make_row({"proxyWallet": ME, "side": "BUY", "asset": token, "size": 1})
