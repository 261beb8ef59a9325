"""The soak's verdict and its one-line summary, from the summary dict :mod:`harness.soak.run` builds
(its figures come from the checkers of :mod:`harness.soak.invariants`)."""

from __future__ import annotations

from typing import Any


def verdict(s: dict[str, Any], lease_ms: int) -> list[str]:
    """The invariants, each a sentence when it does not hold."""
    out = []
    sig, dec, own = s["signals"], s["decisions"], s["ownership"]
    if sig["lost"] or sig["duplicated"] or sig["sim_trades"] == 0:
        out.append(f"signals: {sig['sim_trades']} sim trades, lost {sig['lost']}, duplicated {sig['duplicated']}")
    if dec["undecided"] or dec["decided_more_than_once"]:
        out.append(f"decisions: undecided {dec['undecided']}, more than once {dec['decided_more_than_once']}")
    if own["double_ownership"]:
        out.append(f"double ownership: {own['double_ownership']} ({own['examples']})")
    if s["intents"]["sent_twice"]:
        out.append(f"orders sent twice for one intent: {s['intents']['sent_twice']}")
    if s["orphans"]["orphan_orders"]:
        out.append(f"orphan orders at the sim: {s['orphans']['orphan_orders']} ({s['orphans']['examples']})")
    pos, st, ft = s["positions"], s["settlement"], s["failed_trades"]
    if pos["mismatch_token"] or pos["mismatch_session"]:
        out.append(f"positions differ: venue balance vs pf:token confirmed {pos['mismatch_token']}, pf:token "
                   f"matched vs pf:session {pos['mismatch_session']} ({pos['examples']}); trade by trade: "
                   f"{pos.get('trades', {})}")
    if st["unsettled"]:
        out.append(f"trades still settling at the sim after {st['settled_after_sec']} s: {st['unsettled']} "
                   f"({st['examples']})")
    elif pos["pending_tokens"]:
        out.append(f"every trade settled at the sim, yet pf:token holds pending shares on {pos['pending_tokens']} "
                   f"tokens ({pos['examples']['pending']})")
    if ft["failed_not_voided"] or ft["voided_but_confirmed"]:
        out.append(f"failed trades: {ft['failed_not_voided']} booked and not voided, {ft['voided_but_confirmed']} "
                   f"voided though CONFIRMED ({ft['examples']})")
    if s["cancels"]["heartbeat_expired"]:
        out.append(f"orders cancelled by the venue's heartbeat deadline: {s['cancels']['heartbeat_expired']} "
                   f"(every outage was shorter than it, and workers beat throughout)")
    ven = s["venue"]
    if s["intents"]["sim_orders"] and not ven["deposit_wallet"]:
        out.append(f"orders not made by the deposit wallet: makers {ven['makers']}")
    api = s["api"]
    if api["wrong"]:
        out.append(f"api after the soak: {api['wrong']}")
    if s["alerts"]["halt_alert_sec"] is None:
        out.append(f"a halt set through the API did not reach the webhook in 30 s (status {s['alerts']['halt_status']})")
    sec = s["secrets"]
    if sec["secret_leaks"]:
        out.append(f"secret_leaks = {sec['secret_leaks']} ({sec['examples']})")
    if len(sec["control_found_in_secret_files"]) < 3 or (s["intents"]["sim_orders"] and
                                                         not sec["sim_orders_signed_by_soak_key"]):
        out.append(f"secret search controls failed: {sec['control_found_in_secret_files']}, "
                   f"{sec['sim_orders_signed_by_soak_key']} sim orders signed by the soak key")
    lost_aof = [e for k in s["redis_kill9"] for e in k.get("entries_lost", [])]
    if lost_aof:
        out.append(f"stream entries gone after a redis kill -9: {lost_aof}")
    mx = s["reassignment"]["max_ms"]
    if mx is not None and mx > lease_ms + 2000:
        out.append(f"reassignment max {mx} ms > lease {lease_ms} + 2000 ms")
    return out


def _kv(d: dict[str, Any]) -> str:
    return " ".join(f"{k or '-'}={v}" for k, v in d.items()) or "none"


def human_line(s: dict[str, Any]) -> str:
    sig, ra, ven, st, ft = s["signals"], s["reassignment"], s["venue"], s["settlement"], s["failed_trades"]
    kills = " ".join(f"{k}={v}" for k, v in sorted(s["kills"].items())) or "none"
    return (f"soak {s['spec']['seconds']:.0f}s seed {s['spec']['seed']}: kills {kills} (fast {s['kills_fast']}, "
            f"hand-backs {s['handed_back'].get('worker process restarted', 0)}); redis restarts "
            f"{s['redis_restarts']} kill9 {len(s['redis_kill9'])} (newest entries lost "
            f"{sum(len(k.get('entries_lost', [])) for k in s['redis_kill9'])} of "
            f"{sum(k.get('streams_checked', 0) for k in s['redis_kill9'])} streams); faults {sum(s['faults'].values())}; unexpected exits {len(s['unexpected_exits'])}; "
            f"trades {sig['sim_trades']} signals {sig['signals']} lost {sig['lost']} duplicated {sig['duplicated']}; "
            f"undecided {s['decisions']['undecided']}; double ownership {s['ownership']['double_ownership']}; "
            f"sent twice {s['intents']['sent_twice']}; orphan orders {s['orphans']['orphan_orders']}; "
            f"position mismatches {s['positions']['mismatch_token']}/{s['positions']['mismatch_session']} "
            f"(pending at the end {s['positions']['pending_tokens']} tokens); "
            f"reassignment p50 {ra['p50_ms']} ms max {ra['max_ms']} ms over {ra['moved']} tokens; "
            f"api ok {s['api']['authorized_ok']} refused {s['api']['unauthorized_refused']}; alerts "
            f"{s['alerts']['posts_during_soak']} (halt alert {s['alerts']['halt_alert_sec']} s); "
            f"secret_leaks {s['secrets']['secret_leaks']}; venue: markets {_kv(ven['markets_by_version'])} "
            f"(traded {_kv(ven['tokens_traded_by_version'])} tokens), deposit wallet {ven['deposit_wallet']}, "
            f"heartbeats on, redeemer supervised, settle lag {ven['settle_lag_ms']} ms fail share "
            f"{ven['settle_fail_share']:.0%}: trades {_kv(st['by_status'])} (settled after {st['settled_after_sec']} s), "
            f"failed booked {ft['failed_booked']} voided {ft['voided']} not voided {ft['failed_not_voided']}; cancels "
            f"{_kv(s['cancels']['by_reason'])}; catalogue {s['catalogue_tokens']} tokens, gateway up to "
            f"{s['gateway']['tokens_max']} tokens at p50 {s['gateway']['ticks_per_sec_p50']} ticks/s")
