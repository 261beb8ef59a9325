"""The soak's checkers find what they are meant to find (hand-made rows; no servers)."""

from __future__ import annotations

from typing import Any

from harness.soak import invariants as inv
from shared.messages import stable_id

W = "0x" + "a" * 40


def trade(tx: str, side: str = "BUY", size: float = 10, asset: str = "t1") -> dict[str, Any]:
    return {"proxyWallet": W, "transactionHash": tx, "asset": asset, "side": side, "size": size, "price": 0.5}


def signal(entry: str, tx: str, side: str = "BUY", size: str = "10.0", sid: str = "") -> tuple[str, dict[str, str]]:
    return entry, {"id": sid or stable_id(tx, side, size), "account": W.upper().replace("X", "x"), "tx_hash": tx,
                   "token_id": "t1", "side": side, "size": size, "price": "0.50", "source": "poll"}


def test_lost_duplicated_and_unexpected_signals_are_counted() -> None:
    sims = [trade("0x1"), trade("0x2"), trade("0x3", size=7)]
    sigs = [signal("1-0", "0x1"), signal("2-0", "0x1", sid="other"), signal("3-0", "0x3", size="7"),
            signal("4-0", "0x9")]
    got = inv.check_signals(sims, sigs)
    assert (got["lost"], got["duplicated"], got["unexpected"]) == (1, 1, 1)
    assert got["examples"]["lost"][0][1] == "0x2"
    clean = inv.check_signals(sims[:1], sigs[:1])
    assert (clean["lost"], clean["duplicated"]) == (0, 0)


def test_a_signal_entry_repeated_under_one_id_counts_as_duplicated_once() -> None:
    got = inv.check_signals([trade("0x1")], [signal("1-0", "0x1", sid="s"), signal("2-0", "0x1", sid="s")])
    assert (got["lost"], got["duplicated"], got["unexpected"]) == (0, 1, 0)
    # the same id on another trade: the second is a repeat (and a trade nobody made)
    other = inv.check_signals([trade("0x1")], [signal("1-0", "0x1", sid="s"), signal("2-0", "0x7", sid="s")])
    assert (other["lost"], other["duplicated"], other["unexpected"]) == (0, 1, 1)


def test_each_signal_needs_exactly_one_decision_event() -> None:
    sigs = [signal("1-0", "0x1", sid="a"), signal("2-0", "0x2", sid="b"), signal("3-0", "0x3", sid="c")]
    events = [("9-0", {"id": stable_id("token.queued", "t1", "1-0")}),
              ("9-1", {"id": stable_id("token.rejected", "t1", "3-0")}),
              ("9-2", {"id": stable_id("signal.ignored", "t1", "3-0")})]
    got = inv.check_decisions(sigs, events)
    assert (got["decided"], got["undecided"], got["decided_more_than_once"]) == (1, 1, 1)


def ev(kind: str, token: str, owner: str, epoch: int, ts: int) -> tuple[str, dict[str, Any]]:
    return f"{ts}-0", {"kind": kind, "token_id": token, "ts_event": str(ts), "detail": {"owner": owner, "epoch": epoch}}


def order(token: str, worker: str, epoch: int, oid: str, intent: str = "") -> tuple[str, dict[str, str]]:
    return "1-0", {"token_id": token, "worker": worker, "epoch": str(epoch), "order_id": oid, "status": "placed",
                   "intent_id": intent or oid}


def test_an_order_from_a_superseded_epoch_is_double_ownership() -> None:
    events = [ev("token.starting", "t", "w1", 1, 1_000), ev("token.reassigned", "t", "w2", 2, 5_000)]
    sim = [{"id": "o1", "created_at": 2.0}, {"id": "o2", "created_at": 6.0}, {"id": "o3", "created_at": 7.0}]
    ok = inv.check_ownership(events, [order("t", "w1", 1, "o1"), order("t", "w2", 2, "o3")], sim)
    assert ok["double_ownership"] == 0
    late = inv.check_ownership(events, [order("t", "w1", 1, "o2")], sim)
    assert late["orders_after_supersede"] == 1
    assert late["examples"]["after_supersede"][0]["late_ms"] == 1000
    stranger = inv.check_ownership(events, [order("t", "w3", 2, "o3")], sim)
    assert stranger["orders_from_non_owner"] == 1
    split = inv.check_ownership([*events, ev("token.starting", "t", "w3", 2, 5_001)], [], sim)
    assert split["epochs_with_two_owners"] == 1


def test_one_intent_with_two_venue_orders_is_sent_twice() -> None:
    orders = [order("t", "w1", 1, "o1", "i1"), order("t", "w1", 1, "o1", "i1"), order("t", "w1", 1, "o2", "i2"),
              order("t", "w1", 1, "o3", "i2")]
    got = inv.check_intents(orders, [{"id": "o1"}, {"id": "o2"}, {"id": "o3"}, {"id": "o4"}])
    assert (got["sent_twice"], got["sim_orders_without_intent"]) == (1, 1)


def test_live_orders_of_unowned_tokens_are_orphans() -> None:
    sim = [{"id": "a", "token_id": "t1", "status": "LIVE"}, {"id": "b", "token_id": "t2", "status": "LIVE"},
           {"id": "c", "token_id": "t3", "status": "LIVE"}, {"id": "d", "token_id": "t4", "status": "CANCELED"}]
    tokens = {"t1": {"state": "running", "owner": "w1"}, "t2": {"state": "done", "owner": "w1"},
              "t3": {"state": "running", "owner": "w9"}}
    got = inv.check_orphans(sim, tokens, {"w1"})
    assert got["orphan_orders"] == 2
    assert {o["token"] for o in got["examples"]} == {"t2", "t3"}


def test_positions_are_compared_per_token_against_both_records() -> None:
    got = inv.check_positions({"t1": 10.0, "t2": 0.0}, {"t1": 10.0, "t2": 4.0}, {"t1": 10.0, "t2": 4.0}, {"t1": 6.0})
    assert (got["mismatch_token"], got["mismatch_session"]) == (1, 2)
    assert got["pending_tokens"] == 0


def test_the_venue_balance_is_compared_with_confirmed_positions_and_pending_counted_apart() -> None:
    # t1: a BUY of 10 matched but not settled: the venue's balance has not moved yet.
    # t2: 5 settled, then a SELL of 5 pending: still held at the venue.
    got = inv.check_positions({"t2": 5.0}, {"t1": 0.0, "t2": 5.0}, {"t1": 10.0, "t2": 0.0}, {"t1": 10.0, "t2": 0.0})
    assert (got["mismatch_token"], got["mismatch_session"]) == (0, 0)
    assert (got["pending_tokens"], got["pending_shares"]) == (2, 15.0)
    assert got["examples"]["pending"] == [("t1", 10.0), ("t2", -5.0)]
    wrong = inv.check_positions({"t2": 5.0}, {"t1": 10.0, "t2": 5.0}, {"t1": 10.0, "t2": 5.0}, {"t1": 10.0, "t2": 5.0})
    assert wrong["mismatch_token"] == 1  # t1 counted as held before the venue settled it


def test_reassignment_time_is_from_the_kill_to_the_first_move_away() -> None:
    events = [ev("token.starting", "t1", "w1", 1, 100), ev("token.reassigned", "t1", "w2", 2, 2_600),
              ev("token.starting", "t2", "w1", 1, 100)]
    got = inv.reassignment_times([{"target": "w1", "ts_ms": 600, "tokens": ["t1", "t2"]}], events)
    assert (got["moved"], got["not_moved"], got["max_ms"]) == (1, 1, 2000)


def test_a_token_the_restarted_worker_kept_is_not_a_late_reassignment() -> None:
    # t1 handed back and given to the restarted w1 again at 900, moved to w2 only at 40_000 (another kill):
    # not this kill's reassignment
    events = [ev("token.starting", "t1", "w1", 1, 100), ev("token.reassigned", "t1", "w1", 2, 900),
              ev("token.reassigned", "t1", "w2", 3, 40_000)]
    got = inv.reassignment_times([{"target": "w1", "ts_ms": 600, "tokens": ["t1"]}], events)
    assert (got["moved"], got["not_moved"], got["max_ms"]) == (0, 1, None)


def sim_order(oid: str, *fills: tuple[str, str], status: str = "MATCHED", reason: str = "") -> dict[str, Any]:
    return {"id": oid, "token_id": "t1", "status": status, "cancel_reason": reason,
            "fills": [{"price": 0.5, "size": 5.0, "ts": 1.0, "trade_id": t, "status": s} for t, s in fills]}


def test_trades_still_settling_at_the_sim_are_unsettled() -> None:
    # tr1 filled two of our orders (it is one trade); tr2 is still mined, tr3 retrying
    sim = [sim_order("a", ("tr1", "CONFIRMED"), ("tr2", "MINED")), sim_order("b", ("tr1", "CONFIRMED")),
           sim_order("c", ("tr3", "RETRYING"), ("tr4", "FAILED")), sim_order("d", status="LIVE")]
    got = inv.check_settlement(sim)
    assert (got["trades"], got["unsettled"]) == (4, 2)
    assert got["by_status"] == {"CONFIRMED": 1, "FAILED": 1, "MINED": 1, "RETRYING": 1}
    assert got["examples"] == ["tr2", "tr3"]
    assert inv.check_settlement(sim[1:2])["unsettled"] == 0


def fill_entry(trade_id: str) -> tuple[str, dict[str, str]]:
    return "1-0", {"type": "fill", "token_id": "t1", "trade_id": trade_id, "status": "MATCHED"}


def failed_event(trade_id: str) -> tuple[str, dict[str, Any]]:
    return "2-0", {"kind": "trade.failed", "token_id": "t1", "detail": {"trade_id": trade_id}}


def test_a_failed_trade_booked_must_be_voided_and_a_confirmed_one_must_not() -> None:
    sim = [sim_order("a", ("ok", "CONFIRMED"), ("bad1", "FAILED")), sim_order("b", ("bad2", "FAILED")),
           sim_order("c", ("never-booked", "FAILED"))]
    fills = [fill_entry("ok"), fill_entry("bad1"), fill_entry("bad2"),
             ("3-0", {"type": "trade", "token_id": "t1", "trade_id": "bad2", "status": "FAILED"})]
    held = inv.check_failed_voided(sim, fills, [failed_event("bad1"), failed_event("bad2")])
    assert (held["failed_at_sim"], held["failed_booked"], held["failed_not_voided"],
            held["voided_but_confirmed"]) == (3, 2, 0, 0)  # never booked: no position to void
    missed = inv.check_failed_voided(sim, fills, [failed_event("bad1")])
    assert (missed["failed_not_voided"], missed["examples"]["not_voided"]) == (1, ["bad2"])
    wrong = inv.check_failed_voided(sim, fills, [failed_event("bad1"), failed_event("bad2"), failed_event("ok")])
    assert (wrong["failed_not_voided"], wrong["voided_but_confirmed"]) == (0, 1)


def test_cancels_are_counted_by_reason_and_heartbeat_expiry_apart() -> None:
    sim = [sim_order("a", status="CANCELED", reason="user"), sim_order("b", status="CANCELED", reason="heartbeat_expired"),
           sim_order("c", status="CANCELED", reason="heartbeat_expired"), sim_order("d", status="LIVE")]
    got = inv.check_cancels(sim)
    assert got == {"by_reason": {"heartbeat_expired": 2, "user": 1}, "heartbeat_expired": 2}
    assert inv.check_cancels(sim[:1])["heartbeat_expired"] == 0


def test_a_differing_position_is_explained_trade_by_trade() -> None:
    sim_orders = [
        {"token_id": "T", "side": "BUY", "fills": [{"trade_id": "b1", "size": 10, "status": "CONFIRMED"},
                                                  {"trade_id": "b2", "size": 10, "status": "CONFIRMED"}]},
        {"token_id": "T", "side": "SELL", "fills": [{"trade_id": "s1", "size": 10, "status": "FAILED"},
                                                   {"trade_id": "s2", "size": 5, "status": "CONFIRMED"}]},
        {"token_id": "U", "side": "BUY", "fills": [{"trade_id": "u1", "size": 1, "status": "CONFIRMED"}]},
    ]
    fill = {"type": "fill", "token_id": "T", "epoch": "2", "worker": "w1"}
    fills = [("1-0", {**fill, "trade_id": "b1", "side": "BUY", "size": "10"}),
             ("2-0", {**fill, "trade_id": "s1", "side": "SELL", "size": "10"}),
             ("3-0", {**fill, "trade_id": "s2", "side": "SELL", "size": "5"}),
             ("4-0", {**fill, "trade_id": "s2", "side": "SELL", "size": "5"}),
             ("5-0", {**fill, "trade_id": "x9", "side": "BUY", "size": "3"}),
             ("6-0", {**fill, "trade_id": "", "side": "BUY", "size": "2"}),
             ("7-0", {**fill, "token_id": "U", "trade_id": "u1", "side": "BUY", "size": "1"})]
    events = [("8-0", {"kind": "trade.failed", "token_id": "T", "detail": {"trade_id": "b1"}})]
    d = inv.trade_diff("T", sim_orders, fills, events)
    assert d["settled_not_booked"] == ["b2"]  # the venue has it, our books do not
    assert d["failed_not_voided"] == ["s1"]
    assert d["voided_but_confirmed"] == ["b1"]
    assert d["booked_unknown_to_sim"] == ["x9"]
    assert d["booked_twice"] == ["s2"]
    assert d["booked_without_trade"] == [["BUY", 2.0, "2", "w1"]]
    assert set(d["sim"]) == {"b1", "b2", "s1", "s2"}  # token U's trade is not T's
