"""The soak's invariant checkers: pure functions over what the soak collected at the end.

Each takes plain rows (sim_exchange admin/Data API answers, decoded stream entries) and returns a
dict of figures plus up to a few examples of each violation, so a failure names its evidence.

Definitions (docs/reliability.md, "Whole system soak"):

* **trade key** of a followed wallet's trade: (wallet, transaction hash, token, side, size, price),
  the collector's own idempotency key. lost = sim trades with no signal; duplicated = extra
  signals for one key (and extra entries for one signal id).
* **decision** of a signal: the orchestrator's audit event whose id is
  ``stable_id(kind, token, <pf:signals entry id>)`` for a decision kind (it derives event ids from
  the causing entry). Exactly one per distinct signal id.
* **epoch e of token T is superseded** at the ts of the first ``token.starting`` /
  ``token.reassigned`` event of T with an epoch > e. **Double ownership** = an order that the venue
  received (sim ``created_at``) from (worker, epoch e) of T after e was superseded, or an order
  from a worker that is not the owner the events name for that epoch, or one epoch assigned to two
  workers.
* **sent twice**: one intent id (``pf:orders``) with more than one distinct venue order id.
* **orphan**: a LIVE order at the sim whose token is not in starting/running/exiting with an owner.
* **unsettled**: a trade of ours at the sim still MATCHED, MINED or RETRYING (the soak waits, bounded,
  until there is none before comparing positions with the venue's balances).
* **failed not voided**: a trade the sim ended FAILED that a ``pf:fills`` fill booked and no
  ``trade.failed`` event voided (a position from a trade that never happened); **voided but
  confirmed**: a ``trade.failed`` event for a trade the sim CONFIRMED (a real position dropped).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from shared.fleet import ACTIVE_STATES
from shared.messages import stable_id

DECISION_KINDS = ("token.queued", "token.rejected", "signal.ignored", "token.dequeued", "token.exiting", "token.partial_exit",
                  "token.exit_queued")
ASSIGN_KINDS = ("token.starting", "token.reassigned")
EXAMPLES = 5
UNSETTLED = ("MATCHED", "MINED", "RETRYING")


def _num(x: Any) -> str:
    return f"{float(x):.6f}"


def trade_key(wallet: str, tx: str, token: str, side: str, size: Any, price: Any) -> tuple[str, ...]:
    return (wallet.lower(), tx.lower(), token, side.upper(), _num(size), _num(price))


def check_signals(sim_trades: Iterable[dict[str, Any]], signals: Iterable[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """Every followed wallet trade at the sim -> exactly one signal (by trade key and by signal id)."""
    expected = Counter(trade_key(t["proxyWallet"], t["transactionHash"], t["asset"], t["side"], t["size"], t["price"])
                       for t in sim_trades)
    got: Counter[tuple[str, ...]] = Counter()
    ids: set[str] = set()
    duplicated = 0  # entries that repeat an earlier one, by trade key or by signal id (each counted once)
    for _, f in signals:
        if f.get("source") == "screen":
            continue
        key = trade_key(f["account"], f.get("tx_hash", ""), f["token_id"], f["side"], f["size"], f["price"])
        got[key] += 1
        if f["id"] in ids or (key in expected and got[key] > expected[key]):
            duplicated += 1
        ids.add(f["id"])
    lost = [k for k in expected if got[k] < expected[k]]
    dup_keys = [k for k in got if got[k] > expected.get(k, 0) and k in expected]
    unexpected = [k for k in got if k not in expected]
    return {
        "sim_trades": sum(expected.values()), "signals": sum(got.values()),
        "lost": sum(max(0, expected[k] - got[k]) for k in expected),
        "duplicated": duplicated,
        "unexpected": sum(got[k] for k in unexpected),
        "examples": {"lost": lost[:EXAMPLES], "duplicated": dup_keys[:EXAMPLES], "unexpected": unexpected[:EXAMPLES]},
    }


def check_decisions(signals: Iterable[tuple[str, dict[str, str]]], events: Iterable[tuple[str, dict[str, str]]]
                    ) -> dict[str, Any]:
    """Exactly one decision event per distinct signal id."""
    event_ids = Counter(f.get("id", "") for _, f in events)
    per_signal: dict[str, int] = defaultdict(int)
    for entry_id, f in signals:
        per_signal[f["id"]] += sum(event_ids[stable_id(kind, f["token_id"], entry_id)] for kind in DECISION_KINDS)
    undecided = [s for s, n in per_signal.items() if n == 0]
    multiple = [s for s, n in per_signal.items() if n > 1]
    return {"signals": len(per_signal), "decided": sum(1 for n in per_signal.values() if n == 1),
            "undecided": len(undecided), "decided_more_than_once": len(multiple),
            "examples": {"undecided": undecided[:EXAMPLES], "multiple": multiple[:EXAMPLES]}}


def assignments(events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, list[tuple[int, str, int]]]:
    """token -> [(epoch, owner, ts ms)] from the assignment events, in stream order."""
    out: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for _, f in events:
        if f.get("kind") in ASSIGN_KINDS:
            d = f["detail"]
            out[f["token_id"]].append((int(d["epoch"]), str(d["owner"]), int(f["ts_event"])))
    return out


def check_ownership(events: Iterable[tuple[str, dict[str, Any]]], orders: Iterable[tuple[str, dict[str, str]]],
                    sim_orders: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """No order from a (worker, epoch) the events do not name, or received after its epoch was superseded."""
    assigned = assignments(events)
    created = {o["id"]: float(o["created_at"]) * 1000 for o in sim_orders}
    owner_of: dict[tuple[str, int], set[str]] = defaultdict(set)
    superseded_at: dict[tuple[str, int], int] = {}
    for token, rows in assigned.items():
        for epoch, owner, _ in rows:
            owner_of[(token, epoch)].add(owner)
        for epoch, _, _ in rows:
            later = [ts for e, _, ts in rows if e > epoch]
            if later:
                superseded_at[(token, epoch)] = min(later)
    two_owners = [k for k, v in owner_of.items() if len(v) > 1]
    wrong_owner, after_supersede, seen = [], [], set()
    for _, f in orders:
        if not f.get("order_id") or f.get("status") not in ("placed", "matched"):
            continue
        token, epoch, worker = f["token_id"], int(f["epoch"]), f["worker"]
        key = (token, epoch, f["order_id"])
        if key in seen:
            continue
        seen.add(key)
        if worker not in owner_of.get((token, epoch), {worker}):
            wrong_owner.append({"token": token, "epoch": epoch, "worker": worker, "order": f["order_id"]})
        cut = superseded_at.get((token, epoch))
        at = created.get(f["order_id"])
        if cut is not None and at is not None and at > cut:
            after_supersede.append({"token": token, "epoch": epoch, "worker": worker, "order": f["order_id"],
                                    "late_ms": round(at - cut)})
    return {"tokens_assigned": len(assigned), "assignments": sum(len(v) for v in assigned.values()),
            "epochs_with_two_owners": len(two_owners), "orders_from_non_owner": len(wrong_owner),
            "orders_after_supersede": len(after_supersede),
            "double_ownership": len(two_owners) + len(wrong_owner) + len(after_supersede),
            "examples": {"two_owners": [list(k) for k in two_owners[:EXAMPLES]], "non_owner": wrong_owner[:EXAMPLES],
                         "after_supersede": after_supersede[:EXAMPLES]}}


def check_intents(orders: Iterable[tuple[str, dict[str, str]]], sim_orders: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One venue order per intent; sim orders no pf:orders entry accounts for are counted (not a violation:
    a worker killed between the venue's answer and its XADD leaves one; its successor reconciles)."""
    per_intent: dict[str, set[str]] = defaultdict(set)
    for _, f in orders:
        if f.get("order_id"):
            per_intent[f["intent_id"]].add(f["order_id"])
    twice = {i: sorted(o) for i, o in per_intent.items() if len(o) > 1}
    known = {o for ids in per_intent.values() for o in ids}
    sim = list(sim_orders)
    unrecorded = [o["id"] for o in sim if o["id"] not in known]
    return {"intents": len(per_intent), "sim_orders": len(sim), "sent_twice": len(twice),
            "sim_orders_without_intent": len(unrecorded),
            "examples": {"sent_twice": list(twice.items())[:EXAMPLES], "without_intent": unrecorded[:EXAMPLES]}}


def check_orphans(sim_orders: Iterable[dict[str, Any]], tokens: dict[str, dict[str, str]],
                  live_workers: set[str]) -> dict[str, Any]:
    """LIVE orders at the sim for a token that no live worker owns at the end."""
    orphans = []
    sim_orders = list(sim_orders)
    for o in sim_orders:
        if o["status"] != "LIVE":
            continue
        t = tokens.get(o["token_id"], {})
        if t.get("state") not in ACTIVE_STATES or t.get("owner", "") not in live_workers:
            orphans.append({"order": o["id"], "token": o["token_id"], "state": t.get("state", ""),
                            "owner": t.get("owner", "")})
    return {"live_orders": sum(1 for o in sim_orders if o["status"] == "LIVE"),
            "orphan_orders": len(orphans), "examples": orphans[:EXAMPLES]}


def check_settlement(sim_orders: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Our trades at the sim by settlement status (a trade is counted once, whichever of our orders
    it filled); ``unsettled`` = those not yet CONFIRMED or FAILED."""
    status: dict[str, str] = {}
    for o in sim_orders:
        for f in o.get("fills", []):
            status[f["trade_id"]] = f["status"]
    unsettled = sorted(t for t, s in status.items() if s in UNSETTLED)
    return {"trades": len(status), "by_status": dict(sorted(Counter(status.values()).items())),
            "unsettled": len(unsettled), "examples": unsettled[:EXAMPLES]}


def check_failed_voided(sim_orders: Iterable[dict[str, Any]], fills: Iterable[tuple[str, dict[str, str]]],
                        events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A FAILED trade at the sim is no position: if a fill booked it, a ``trade.failed`` event voided
    it. A trade voided that the sim CONFIRMED is the opposite error."""
    status = {f["trade_id"]: f["status"] for o in sim_orders for f in o.get("fills", [])}
    booked = {f["trade_id"] for _, f in fills if f.get("type") == "fill" and f.get("trade_id")}
    voided = {str(f["detail"].get("trade_id", "")) for _, f in events if f.get("kind") == "trade.failed"}
    failed = {t for t, s in status.items() if s == "FAILED"}
    not_voided = sorted((failed & booked) - voided)
    wrongly = sorted(t for t in voided if status.get(t) == "CONFIRMED")
    return {"failed_at_sim": len(failed), "failed_booked": len(failed & booked), "voided": len(voided),
            "failed_not_voided": len(not_voided), "voided_but_confirmed": len(wrongly),
            "examples": {"not_voided": not_voided[:EXAMPLES], "voided_but_confirmed": wrongly[:EXAMPLES]}}


def check_cancels(sim_orders: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Cancelled orders at the sim by reason; ``heartbeat_expired`` are orders the venue's dead-man
    switch took (none while some worker of the account beats on time)."""
    reasons = Counter(o.get("cancel_reason") or "" for o in sim_orders if o["status"] == "CANCELED")
    return {"by_reason": dict(sorted(reasons.items())), "heartbeat_expired": reasons.get("heartbeat_expired", 0)}


def check_positions(sim_confirmed: dict[str, float], token_confirmed: dict[str, float],
                    token_matched: dict[str, float], session_positions: dict[str, float],
                    tol: float = 1e-6) -> dict[str, Any]:
    """Per token: the venue's balance (it moves when a trade is CONFIRMED) equals pf:token's
    confirmed position; the owner's own count (pf:session: every fill it booked, settled or not)
    equals pf:token's matched position. Shares matched but not settled (matched - confirmed) are
    counted apart: they are in neither the venue's balance nor a mismatch."""
    names = set(sim_confirmed) | set(token_confirmed) | set(token_matched) | set(session_positions)
    vs_token = [{"token": t, "sim": sim_confirmed.get(t, 0.0), "confirmed": token_confirmed.get(t, 0.0)}
                for t in sorted(names) if abs(sim_confirmed.get(t, 0.0) - token_confirmed.get(t, 0.0)) > tol]
    vs_session = [{"token": t, "matched": token_matched.get(t, 0.0), "session": session_positions.get(t, 0.0)}
                  for t in sorted(names) if abs(token_matched.get(t, 0.0) - session_positions.get(t, 0.0)) > tol]
    pending = {t: token_matched.get(t, 0.0) - token_confirmed.get(t, 0.0) for t in sorted(names)}
    pending = {t: round(v, 6) for t, v in pending.items() if abs(v) > tol}
    return {"tokens": len(names), "held_at_sim": sum(1 for v in sim_confirmed.values() if abs(v) > tol),
            "mismatch_token": len(vs_token), "mismatch_session": len(vs_session),
            "pending_tokens": len(pending), "pending_shares": round(sum(abs(v) for v in pending.values()), 6),
            "examples": {"token": vs_token[:EXAMPLES], "session": vs_session[:EXAMPLES],
                         "pending": list(pending.items())[:EXAMPLES]}}


def reassignment_times(kills: Iterable[dict[str, Any]], events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """For each worker kill (``target`` = worker, ``ts_ms``, ``tokens``): each token the worker owned then -> ms until
    its first assignment after the kill, when that assignment is to another worker. A token whose first assignment
    went back to the restarted worker (same id: a hand-back it kept), or that was never assigned again, is counted
    apart: a move much later (another kill, a drain) is not this kill's reassignment."""
    assigned = assignments(events)
    times: list[int] = []
    kept = 0
    for kill in kills:
        for token in kill["tokens"]:
            after = sorted((ts, owner) for _, owner, ts in assigned.get(token, []) if ts >= kill["ts_ms"])
            if after and after[0][1] != kill["target"]:
                times.append(after[0][0] - int(kill["ts_ms"]))
            else:
                kept += 1
    times.sort()
    return {"moved": len(times), "not_moved": kept,
            "p50_ms": times[len(times) // 2] if times else None, "max_ms": times[-1] if times else None}


def trade_diff(token: str, sim_orders: Iterable[dict[str, Any]], fills: Iterable[tuple[str, dict[str, str]]],
               events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Why one token's positions differ, trade by trade: the sim's trades of it (side, shares,
    status), the fills pf:fills booked for it (by trade, or without one), the trades voided, and
    the differences: a trade the sim settled that no fill booked, a fill of a trade the sim does not
    know, a FAILED trade booked and not voided, a voided trade the sim CONFIRMED."""
    at_sim: dict[str, tuple[str, float, str]] = {}
    for o in sim_orders:
        if o.get("token_id") == token:
            for f in o.get("fills", []):
                at_sim[f["trade_id"]] = (o["side"], float(f["size"]), f["status"])
    booked: dict[str, list[tuple[str, float, str, str]]] = {}
    untraded: list[tuple[str, float, str, str]] = []
    for _, f in fills:
        if f.get("type") != "fill" or f.get("token_id") != token:
            continue
        row = (f.get("side", ""), float(f.get("size") or 0), f.get("epoch", ""), f.get("worker", ""))
        if f.get("trade_id"):
            booked.setdefault(f["trade_id"], []).append(row)
        else:
            untraded.append(row)
    voided = {str(e["detail"].get("trade_id", "")) for _, e in events
              if e.get("kind") == "trade.failed" and e.get("token_id") == token}
    return {
        "sim": {t: list(v) for t, v in at_sim.items()},
        "booked": {t: [list(r) for r in rows] for t, rows in booked.items()},
        "booked_without_trade": [list(r) for r in untraded],
        "voided": sorted(voided),
        "settled_not_booked": sorted(t for t, (_, _, st) in at_sim.items() if st == "CONFIRMED" and t not in booked),
        "booked_unknown_to_sim": sorted(t for t in booked if t not in at_sim),
        "failed_not_voided": sorted(t for t, (_, _, st) in at_sim.items() if st == "FAILED" and t in booked
                                    and t not in voided),
        "voided_but_confirmed": sorted(t for t in voided if at_sim.get(t, ("", 0, ""))[2] == "CONFIRMED"),
        "booked_twice": sorted(t for t, rows in booked.items() if len(rows) > 1),
    }
