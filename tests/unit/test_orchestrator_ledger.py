"""The settlement-aware ledger (pure): pending vs confirmed, statuses in any order, FAILED voids."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.orchestrator.ledger import compact, daily_changes, newly_failed, settle
from shared.keys import TOKEN_LEDGER_FIELDS
from shared.ledger import STATUS_ORDER, Adjustment, Base, Ledger, LedgerFill, later

DAY_MS = 86_400_000


def fill(n: int, side: str, price: float, size: float, status: str = "MATCHED", trade: str | None = None,
         ts: int = 0, epoch: int = 1, fee: float = 0.0) -> LedgerFill:
    """Fill n, written as pf:fills entry ``n-0``."""
    return LedgerFill(f"f{n}", f"t{n}" if trade is None else trade, side, price, size, fee, ts or n, epoch, status,
                      f"{n}-0")


def book(*fills: LedgerFill, statuses: dict[str, str] | None = None, base: Base = Base()) -> Ledger:
    ledger = Ledger(base)
    for f in fills:
        ledger = ledger.with_fill(f)
    for trade, status in (statuses or {}).items():
        ledger = ledger.with_status(trade, status)
    return ledger


def test_a_matched_buy_is_pending_and_counts_as_exposure() -> None:
    t = settle(book(fill(1, "BUY", 0.5, 10)))
    f = t.fields()
    assert (t.matched.position, t.confirmed.position, t.pending) == (10.0, 0.0, 10.0)
    assert (f["pending_buy"], f["pending_sell"], f["pending_notional"], f["pending_trades"]) == (
        "10.000000", "0.000000", "5.000000", "1")
    assert t.exposure == 5.0  # the money is paid: at risk before it settles


def test_confirmed_moves_the_fill_from_pending_to_confirmed() -> None:
    t = settle(book(fill(1, "BUY", 0.5, 10), statuses={"t1": "MINED"}))
    assert t.pending == 10.0
    t = settle(book(fill(1, "BUY", 0.5, 10), statuses={"t1": "MINED"}).with_status("t1", "CONFIRMED"))
    assert (t.matched.position, t.confirmed.position, t.pending, len(t.pending_trades)) == (10.0, 10.0, 0.0, 0)
    assert t.confirmed.avg_cost == 0.5


def test_a_status_before_its_fill_applies_when_the_fill_comes() -> None:
    early = Ledger().with_status("t1", "CONFIRMED").with_fill(fill(1, "BUY", 0.5, 10))
    assert settle(early).fields() == settle(book(fill(1, "BUY", 0.5, 10, status="CONFIRMED"))).fields()
    assert settle(early).confirmed.position == 10.0


def test_a_status_twice_or_an_older_one_later_changes_nothing() -> None:
    once = book(fill(1, "BUY", 0.5, 10), statuses={"t1": "CONFIRMED"})
    assert once.with_status("t1", "CONFIRMED") == once
    assert once.with_status("t1", "MINED") == once  # a late MINED does not undo CONFIRMED
    assert later("CONFIRMED", "FAILED") == later("FAILED", "CONFIRMED") == "FAILED"


def test_a_failed_buy_is_voided_everywhere_later_sells_included() -> None:
    # BUY 10 @ 0.4 (settled), BUY 10 @ 0.6, SELL 10 @ 0.7. With both buys the sell realises
    # 10 x (0.7 - 0.5) = 2; once the second buy fails it never was, so the sell realised 3.
    ledger = book(fill(1, "BUY", 0.4, 10, "CONFIRMED"), fill(2, "BUY", 0.6, 10), fill(3, "SELL", 0.7, 10))
    before = settle(ledger)
    assert (before.matched.position, round(before.matched.realized, 9)) == (10.0, 2.0)
    failed = ledger.with_status("t2", "FAILED")
    after = settle(failed)
    assert (after.matched.position, round(after.matched.realized, 9), after.matched.avg_cost) == (0.0, 3.0, 0.0)
    assert after.exposure == 4.0  # the confirmed book still holds the first buy until the sell settles
    assert after.fields()["failed_trades"] == "1"
    [voided] = newly_failed(before, after, failed)
    assert (voided.trade_id, voided.side, voided.size, voided.price, voided.fills) == ("t2", "BUY", 10.0, 0.6, ("f2",))
    assert daily_changes(before, after) == {"1970-01-01": pytest.approx(1.0)}


def test_a_failed_sell_gives_the_shares_and_its_days_pnl_back() -> None:
    ledger = book(fill(1, "BUY", 0.4, 10, "CONFIRMED"), fill(2, "SELL", 0.3, 10, ts=3 * DAY_MS))
    before = settle(ledger)
    assert before.realized_by_day == {"1970-01-01": 0.0, "1970-01-04": pytest.approx(-1.0)}
    after = settle(ledger.with_status("t2", "FAILED"))
    assert (after.matched.position, after.matched.avg_cost, after.matched.realized) == (10.0, 0.4, 0.0)
    assert daily_changes(before, after) == {"1970-01-04": pytest.approx(1.0)}


def test_old_fills_without_a_status_are_confirmed_as_before() -> None:
    t = settle(book(fill(1, "BUY", 0.4, 10, "CONFIRMED", trade=""), fill(2, "SELL", 0.5, 4, "CONFIRMED", trade="")))
    assert (t.matched.position, t.confirmed.position, t.pending) == (6.0, 6.0, 0.0)
    assert t.matched.realized == t.confirmed.realized
    assert book(fill(1, "BUY", 0.4, 10, "CONFIRMED", trade="")).statuses == {}  # no trade: nothing to remember


def test_a_token_from_before_the_ledger_starts_from_its_own_figures() -> None:
    base = Base.from_token({"position": "5.000000", "avg_cost": "0.400000", "realized_pnl": "1.5"})
    assert base.matched == base.confirmed == (5.0, 0.4, 1.5)
    t = settle(Ledger.from_hash({}, {"position": "5", "avg_cost": "0.4", "realized_pnl": "1.5"})
               .with_fill(fill(1, "SELL", 0.6, 5)))
    assert (t.matched.position, round(t.matched.realized, 9), t.confirmed.position) == (0.0, 2.5, 5.0)


def test_fills_fold_in_the_order_they_were_written_not_by_their_clock() -> None:
    # Two fills in one millisecond, or a new owner whose clock is behind: the entry ids decide.
    buy = replace(fill(1, "BUY", 0.5, 10), ts=5, seq="1700-0")
    sell = replace(fill(2, "SELL", 0.6, 10), ts=5, seq="1700-1")
    t = settle(book(sell, buy))
    assert (t.matched.position, round(t.matched.realized, 9)) == (0.0, 1.0)
    assert settle(book(replace(buy, seq="1700-2"), sell)).matched.realized == 0.0  # sold short first: no gain
    assert book(buy, replace(buy, seq="1800-0")).fills["f1"].seq == "1700-0"  # written twice: the first stands


def test_a_sessions_own_count_comes_after_its_fills() -> None:
    # The closed report's entry id is of pf:sessions: in the same millisecond its sequence part
    # says nothing about pf:fills', and the report was written after the session's fills.
    ledger = book(replace(fill(1, "BUY", 0.5, 10), seq="1700-3", status="CONFIRMED"))
    t = settle(ledger.with_adjustment(Adjustment(1, "1700-0", -6.0)))
    assert (t.matched.position, t.matched.avg_cost, t.confirmed.position) == (4.0, 0.5, 4.0)


def test_the_ledger_survives_its_redis_hash() -> None:
    ledger = book(fill(1, "BUY", 0.4, 10, "CONFIRMED"), fill(2, "BUY", 0.6, 10, fee=0.01),
                  statuses={"t9": "FAILED"}, base=Base((1.0, 0.5, 0.2), (1.0, 0.5, 0.1), 2))
    ledger = ledger.with_adjustment(Adjustment(1, "99-1", -0.5))
    assert Ledger.from_hash(ledger.to_hash(), {"position": "123"}) == ledger


def test_every_figure_the_ledger_writes_is_documented() -> None:
    assert set(settle(Ledger()).fields()) == {name for name, _ in TOKEN_LEDGER_FIELDS}


def test_compacting_at_a_close_keeps_every_figure_and_every_pending_trade() -> None:
    ledger = book(fill(1, "BUY", 0.4, 10, "CONFIRMED"), fill(2, "BUY", 0.6, 10), fill(3, "SELL", 0.7, 5),
                  statuses={"t3": "FAILED", "t-early": "CONFIRMED"})
    small = compact(ledger)
    assert settle(small).fields() == settle(ledger).fields()
    assert set(small.fills) == {"f2", "f3"}  # the head up to the first pending fill is folded
    assert set(small.statuses) == {"t2", "t3", "t-early"}  # a status still waiting for its fill stays
    settled = ledger.with_status("t2", "CONFIRMED")
    assert compact(settled).fills == {}
    assert settle(compact(settled)).fields() == settle(settled).fields()
    assert settle(compact(settled)).fields()["failed_trades"] == "1"
    assert set(compact(settled).statuses) == {"t-early"}


def test_a_trade_is_folded_whole_or_not_at_all() -> None:
    # t1 filled two of our orders; a pending fill between them keeps both in the ledger.
    ledger = book(fill(1, "BUY", 0.5, 2, "FAILED", trade="t1"), fill(2, "BUY", 0.5, 3),
                  fill(3, "BUY", 0.5, 4, "FAILED", trade="t1"))
    assert set(compact(ledger).fills) == {"f1", "f2", "f3"}
    assert settle(compact(ledger.with_status("t2", "CONFIRMED"))).fields()["failed_trades"] == "1"


# --- any order of fills and status updates ends in the same state ----------------------------------------

statuses = st.sampled_from(STATUS_ORDER)
fills_st = st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 99), st.integers(1, 50),
              st.sampled_from(["", "ta", "tb", "tc", "td"]), statuses, st.integers(0, 3 * DAY_MS), st.integers(0, 5),
              st.integers(0, 3)),
    max_size=8,
)
updates_st = st.lists(st.tuples(st.sampled_from(["ta", "tb", "tc", "td", "tx"]), statuses), max_size=10)


def _events(raw_fills: list, updates: list) -> list:  # type: ignore[type-arg]
    out: list = [("fill", LedgerFill(f"f{i}", trade, side, price / 100, size / 2, fee / 100, ts, 1,
                                     "CONFIRMED" if not trade else status, f"{seq}-0"))  # seqs may tie
                 for i, (side, price, size, trade, status, ts, seq, fee) in enumerate(raw_fills)]
    return out + [("status", u) for u in updates]


def _apply(events: list) -> Ledger:  # type: ignore[type-arg]
    ledger = Ledger()
    for kind, what in events:
        ledger = ledger.with_fill(what) if kind == "fill" else ledger.with_status(*what)
    return ledger


@settings(max_examples=300, deadline=None)
@given(fills_st, updates_st, st.data())
def test_any_order_of_fills_and_statuses_ends_in_the_same_state(raw_fills: list, updates: list,  # type: ignore[type-arg]
                                                                data: st.DataObject) -> None:
    events = _events(raw_fills, updates)
    shuffled = data.draw(st.permutations(events))
    repeated = data.draw(st.lists(st.sampled_from(events), max_size=4)) if events else []  # delivered again
    reference, other = _apply(events), _apply([*shuffled, *repeated])
    assert other == reference
    assert settle(other).fields() == settle(reference).fields()
    assert settle(other).realized_by_day == settle(reference).realized_by_day


# A folded trade is final; the venue never turns CONFIRMED into FAILED, so later news is not FAILED here.
later_news = st.lists(st.tuples(st.sampled_from(["ta", "tb", "tc", "td", "tx"]),
                                st.sampled_from([s for s in STATUS_ORDER if s != "FAILED"])), max_size=10)


@settings(max_examples=200, deadline=None)
@given(fills_st, updates_st, later_news)
def test_compacting_never_changes_a_figure(raw_fills: list, updates: list, more: list) -> None:  # type: ignore[type-arg]
    ledger = _apply(_events(raw_fills, updates))
    assert settle(compact(ledger)).fields() == settle(ledger).fields()
    # and statuses learned afterwards land the same on the compacted ledger
    for trade, status in more:
        ledger, small = ledger.with_status(trade, status), compact(ledger).with_status(trade, status)
        assert settle(small).fields() == settle(ledger).fields()
