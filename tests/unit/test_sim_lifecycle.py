"""The strict sim's order lifecycle, pure: settlement, delayed markets, heartbeats, rate limits."""

from __future__ import annotations

import itertools

import pytest

from services.sim_exchange.faults import Faults
from services.sim_exchange.heartbeats import Heartbeats
from services.sim_exchange.limits import CANCELS, ORDERS, SignerLimits
from services.sim_exchange.market import MarketSim, set_levels
from services.sim_exchange.matching import Matcher, OrderError, OrderRequest
from services.sim_exchange.settlement import Settlement

BUYER = "0x00000000000000000000000000000000000000bb"
SELLER = "0x00000000000000000000000000000000000000cc"
_ids = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def setup(lag_s: float = 10.0, fail_share: float = 0.0) -> tuple[MarketSim, Matcher, Clock, str]:
    sim = MarketSim(seed=1, count=1, volatility=0.0)
    token = sim.markets[0].yes.token_id
    set_levels(sim.by_token[token], [(0.48, 100)], [(0.50, 100)])
    clock = Clock()
    return sim, Matcher(sim, 100.0, now=clock, settle_lag_s=lag_s, settle_fail_share=fail_share, seed=3), clock, token


def req(token: str, maker: str, side: str, price: float, size: float, order_type: str = "GTC",
        owner: str = "key") -> OrderRequest:
    return OrderRequest(f"0x{next(_ids):064x}", token, side, price, size, owner, maker, order_type)


def test_settlement_timetable_and_seeded_failures() -> None:
    s: Settlement[str] = Settlement(lag_s=4.0, fail_share=0.5, seed=9)
    for i in range(40):
        s.enroll(f"t{i}", 100.0)
    assert s.advance(101.9) == []
    half = s.advance(102.0)
    assert {t.status for t in half} == {"MINED", "RETRYING"}
    assert s.advance(103.9) == []
    final = {t.trade: t.status for t in s.advance(104.0)}
    assert set(final.values()) == {"CONFIRMED", "FAILED"}
    assert all((final[t.trade] == "FAILED") == (t.status == "RETRYING") for t in half)
    assert s.unsettled() == []
    again: Settlement[str] = Settlement(lag_s=4.0, fail_share=0.5, seed=9)
    for i in range(40):
        again.enroll(f"t{i}", 0.0)
    assert {t.trade: t.status for t in again.advance(4.0) if t.status in ("CONFIRMED", "FAILED")} == final
    instant: Settlement[str] = Settlement(lag_s=0.0, fail_share=0.0, seed=1)
    instant.enroll("x", 5.0)
    assert [t.status for t in instant.advance(5.0)] == ["MINED", "CONFIRMED"]


def test_a_matched_buy_moves_nothing_until_confirmed_and_its_shares_cannot_be_sold() -> None:
    _, m, clock, token = setup(lag_s=10.0)
    order, fills = m.place(req(token, BUYER, "BUY", 0.50, 20))
    assert [f.status for f in fills] == ["MATCHED"]
    acct = m.accounts[BUYER]
    assert (acct.cash, acct.positions.get(token, 0.0)) == (100.0, 0.0)  # nothing settled yet
    assert m.available_cash(acct) == pytest.approx(90.0)  # the trade holds its $10
    with pytest.raises(OrderError, match=r"not enough balance / allowance: the balance is not enough -> "
                                         r"balance: 0, order amount: 20000000"):
        m.place(req(token, BUYER, "SELL", 0.48, 20))
    with pytest.raises(OrderError, match=r"balance: 100000000, sum of matched orders: 10000000, "
                                         r"order amount \(inc. fees\): 95000000"):
        m.place(req(token, BUYER, "BUY", 0.50, 190))
    clock.t += 5
    assert [t.status for t in m.settle()] == ["MINED"]
    assert acct.positions.get(token, 0.0) == 0.0
    clock.t += 5
    assert [t.status for t in m.settle()] == ["CONFIRMED"]
    assert (acct.cash, acct.positions[token]) == (pytest.approx(90.0), 20.0)
    assert order.fills[0].status == "CONFIRMED"
    m.place(req(token, BUYER, "SELL", 0.48, 20))  # sellable now
    assert [s.status for s in m.settled] == ["MINED", "CONFIRMED"]  # queued for the user channel


def test_a_failed_trade_is_undone_the_buyer_never_gets_the_shares_and_the_seller_keeps_them() -> None:
    _, m, clock, token = setup(lag_s=2.0, fail_share=1.0)
    m.account(SELLER).positions[token] = 30.0
    m.place(req(token, BUYER, "BUY", 0.50, 20))
    m.place(req(token, SELLER, "SELL", 0.48, 30))
    seller = m.accounts[SELLER]
    assert m.available_shares(seller, token) == 0.0  # sold, not settled: held
    clock.t += 2
    assert {t.status for t in m.settle()} == {"RETRYING", "FAILED"}
    buyer = m.accounts[BUYER]
    assert (buyer.cash, buyer.positions.get(token, 0.0), m.available_cash(buyer)) == (100.0, 0.0, 100.0)
    assert (seller.cash, seller.positions[token], m.available_shares(seller, token)) == (100.0, 30.0, 30.0)


def test_a_delayed_market_holds_a_marketable_order_then_matches_it() -> None:
    sim, m, clock, token = setup(lag_s=0.0)
    sim.markets[0].seconds_delay = 3.0
    resting, _ = m.place(req(token, BUYER, "BUY", 0.40, 10))  # does not cross: rests at once
    assert resting.status == "LIVE"
    order, fills = m.place(req(token, BUYER, "BUY", 0.50, 20))
    assert (order.status, fills) == ("DELAYED", [])
    assert m.available_cash(m.accounts[BUYER]) == pytest.approx(100 - 4 - 10)  # held while it waits
    assert m.release_delayed() == []
    clock.t += 3
    assert m.release_delayed() == [order]
    assert (order.status, order.size_matched) == ("MATCHED", 20)
    killed, _ = m.place(req(token, BUYER, "BUY", 0.50, 50, "FOK"))  # 80 left at 0.50 now ...
    set_levels(sim.by_token[token], [(0.48, 100)], [(0.50, 5)])  # ... 5 when its delay is over
    clock.t += 3
    m.release_delayed()
    assert (killed.status, killed.cancel_reason) == ("CANCELED", "unmatched")


def test_cancellations_carry_their_reason() -> None:
    _, m, _, token = setup(lag_s=0.0)
    mine, _ = m.place(req(token, BUYER, "BUY", 0.40, 10, owner="k1"))
    other, _ = m.place(req(token, BUYER, "BUY", 0.41, 10, owner="k2"))
    third, _ = m.place(req(token, BUYER, "BUY", 0.42, 10, owner="k2"))
    assert m.cancel(mine.id) is None
    assert [o.id for o in m.cancel_owned("k2", "heartbeat_expired")] == [other.id, third.id]
    assert [(o.id, o.cancel_reason) for o in m.cancelled] == [
        (mine.id, "user"), (other.id, "heartbeat_expired"), (third.id, "heartbeat_expired")]


def test_heartbeats_chain_ids_refuse_stale_ones_and_expire() -> None:
    hb = Heartbeats(timeout_s=10)
    refused = hb.beat("k", "made-up", 0.0)
    assert (refused.accepted, refused.heartbeat_id) == (False, "")  # the first send carries ""
    first = hb.beat("k", "", 0.0)
    assert first.accepted
    assert first.heartbeat_id
    stale = hb.beat("k", "", 5.0)
    assert (stale.accepted, stale.heartbeat_id) == (False, first.heartbeat_id)
    second = hb.beat("k", first.heartbeat_id, 8.0)
    assert second.accepted
    assert second.heartbeat_id != first.heartbeat_id
    assert hb.expired(18.0) == []  # 10 s after the last accepted send, not after the refused one
    assert hb.expired(18.1) == ["k"]
    assert hb.beat("k", "", 19.0).accepted  # registration gone: start again with ""
    hb.hold(100.0)  # an engine restart until t=100: no deadline runs before it
    assert hb.expired(105.0) == []
    assert hb.expired(110.1) == ["k"]


def test_a_heartbeat_outage_refuses_for_its_window_and_ends_by_itself() -> None:
    f = Faults()
    assert not f.heartbeats_down(0.0)
    assert f.heartbeat_outage(100.0, 8.0) == 108.0
    assert f.heartbeats_down(100.0)
    assert f.heartbeats_down(107.9)
    assert not f.heartbeats_down(108.0)
    f.heartbeat_outage(200.0, 60.0)
    f.clear()  # /_sim/reset
    assert not f.heartbeats_down(201.0)


def test_signer_buckets_refuse_with_retry_after_and_report_in_headers() -> None:
    lim = SignerLimits("enforce", "standard", order_rate=2, order_burst=3, cancel_rate=10, cancel_burst=10)
    assert [lim.charge("s", ORDERS, 1, 0.0).allowed for _ in range(3)] == [True] * 3
    refused = lim.charge("s", ORDERS, 1, 0.0)
    assert (refused.allowed, refused.retry_after) == (False, 1)
    assert refused.headers["Poly-RateLimit-Remaining"] == "0"
    assert refused.headers["Poly-RateLimit-Reset"] == "2"  # full again in 3 / 2 s
    assert refused.headers["Poly-RateLimit-Tier"] == "standard"
    assert lim.charge("other", ORDERS, 3, 0.0).allowed  # per signer
    assert lim.charge("s", CANCELS, 10, 0.0).allowed  # its own bucket
    assert not lim.charge("s", ORDERS, 3, 1.0).allowed  # a batch is all or nothing: 2 tokens back, 3 asked
    assert lim.charge("s", ORDERS, 2, 1.0).allowed
    warn = SignerLimits("warn", "standard", 1, 1, 1, 1)
    warn.charge("s", ORDERS, 1, 0.0)
    over = warn.charge("s", ORDERS, 1, 0.0)
    assert over.allowed
    assert (over.headers["Poly-RateLimit-Remaining"], over.headers["Poly-RateLimit-Warning"]) == ("-1", "true")
    off = SignerLimits("off", "standard", 1, 1, 1, 1).charge("s", ORDERS, 5, 0.0)
    assert (off.allowed, off.headers) == (True, {})
