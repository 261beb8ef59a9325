"""services/alerter/rules.py: what raises an alert, de-duplication, rate limit, payload shapes."""

from __future__ import annotations

from services.alerter.rules import (
    Alert,
    FeedWatch,
    GatewayWatch,
    RejectionRate,
    Throttle,
    WorkerWatch,
    from_event,
    payload,
)


def test_halt_daily_loss_and_error_events_raise_alerts() -> None:
    halt = from_event({"kind": "control.halt", "reason": "drill", "detail": {"target": "halt", "requested_by": "cli"}}, 1)
    assert halt is not None
    assert (halt.kind, halt.subject, halt.severity) == ("halt", "halt", "critical")
    assert "by cli: drill" in halt.text
    reduce = from_event({"kind": "control.halt", "detail": {"target": "reduce_only"}}, 1)
    assert reduce is not None
    assert reduce.severity == "warning"
    loss = from_event({"kind": "risk.daily_loss_limit", "level": "error", "reason": "-201 <= -200"}, 1)
    assert loss is not None
    assert loss.kind == "daily_loss"
    short = from_event({"kind": "risk.short_position", "level": "error", "token_id": "42", "reason": "pos -3"}, 1)
    assert short is not None
    assert (short.kind, short.subject) == ("error_event", "risk.short_position:42")


def test_a_paused_leader_is_a_warning_alert_naming_it_the_reason_and_how_to_resume() -> None:
    leader = "0x" + "a" * 40
    alert = from_event({"kind": "leader.paused", "level": "warning", "reason": "copied PnL -12.00 USD ...",
                        "detail": {"account": leader, "by": "auto-demotion"}}, 1)
    assert alert is not None
    assert (alert.kind, alert.subject, alert.severity) == ("leader_paused", leader, "warning")
    assert f"by auto-demotion: copied PnL -12.00 USD ...; `polyfleet leaders resume {leader}`" in alert.text
    assert from_event({"kind": "leader.resumed", "detail": {"account": leader}}, 1) is None


def test_ordinary_events_and_single_rejections_raise_nothing() -> None:
    assert from_event({"kind": "token.running", "level": "info"}, 1) is None
    assert from_event({"kind": "token.rejected", "level": "warning", "reason": "blacklisted"}, 1) is None
    assert from_event({"kind": "control.resume"}, 1) is None


def test_a_worker_failing_closed_on_order_heartbeats_is_a_critical_alert_except_in_the_venue_restart() -> None:
    failing = from_event({"kind": "worker.heartbeat_failing", "level": "error", "reason": "w1 stopped placing orders",
                          "detail": {"worker": "w1", "restarting": False}}, 1)
    assert failing is not None
    assert (failing.kind, failing.subject, failing.severity, failing.text) == (
        "venue_heartbeat", "w1", "critical", "w1 stopped placing orders")
    assert from_event({"kind": "worker.heartbeat_failing", "level": "warning",
                       "detail": {"worker": "w1", "restarting": True}}, 1) is None
    assert from_event({"kind": "worker.heartbeat_restored", "level": "info", "detail": {"worker": "w1"}}, 1) is None


def test_rejections_alert_only_at_the_rate_threshold_within_a_minute() -> None:
    rate = RejectionRate(threshold=3)
    ev = {"kind": "token.rejected", "reason": "over risk.max_notional_total"}
    assert rate.observe(ev, 0) is None
    assert rate.observe(ev, 10_000) is None
    assert rate.observe(ev, 65_000) is None  # the first fell out of the window
    alert = rate.observe(ev, 66_000)
    assert alert is not None
    assert alert.kind == "risk_rejections"
    assert "3 signals rejected" in alert.text
    assert rate.observe({"kind": "token.queued"}, 72_000) is None


def test_worker_death_is_reported_on_the_transition_or_while_holding_tokens() -> None:
    watch = WorkerWatch()
    assert watch.observe({"w1": (True, 2), "w2": (False, 0)}, 1) == []  # w2 was never seen alive, holds nothing
    [dead] = watch.observe({"w1": (False, 2), "w2": (False, 0)}, 2)
    assert (dead.kind, dead.subject) == ("worker_dead", "w1")
    assert "2 token(s)" in dead.text
    assert watch.observe({"w1": (False, 0)}, 3) == []  # tokens moved, it was not alive last time


def test_gateway_stall_after_the_configured_silence_only_when_tokens_are_wanted() -> None:
    gw = GatewayWatch(stall_ms=30_000)
    assert gw.observe(wanted=0, alive=False, ts_ms=0) is None
    assert gw.observe(wanted=3, alive=False, ts_ms=1_000) is None
    assert gw.observe(wanted=3, alive=False, ts_ms=20_000) is None
    stall = gw.observe(wanted=3, alive=False, ts_ms=31_000)
    assert stall is not None
    assert "30s" in stall.text
    assert gw.observe(wanted=3, alive=True, ts_ms=32_000) is None
    assert gw.missing_since is None


def test_the_orchestrators_worker_dead_event_is_the_same_alert_as_the_lease_watch() -> None:
    event = {"kind": "worker.dead", "level": "error", "reason": "worker w1 lost its lease holding 2 token(s)",
             "detail": {"worker": "w1", "tokens": 2}}
    alert = from_event(event, 5)
    assert alert is not None
    assert (alert.kind, alert.subject, alert.severity) == ("worker_dead", "w1", "critical")
    [watched] = WorkerWatch(alive_before={"w1"}).observe({"w1": (False, 2)}, 6)
    assert watched.key == alert.key  # the throttle sends one of the two


def test_gateway_silent_when_alive_but_passing_no_frames_while_tokens_are_wanted() -> None:
    feed = FeedWatch(silent_ms=300_000)
    assert feed.observe(wanted=3, alive=True, frames_per_sec=0.0, ts_ms=0) is None  # the quiet starts
    assert feed.observe(wanted=3, alive=True, frames_per_sec=0.0, ts_ms=299_000) is None
    silent = feed.observe(wanted=3, alive=True, frames_per_sec=0.0, ts_ms=301_000)
    assert silent is not None
    assert (silent.kind, silent.severity) == ("gateway_silent", "warning")
    assert "301s" in silent.text
    assert feed.observe(wanted=3, alive=True, frames_per_sec=2.5, ts_ms=302_000) is None  # frames again: reset
    assert feed.observe(wanted=3, alive=True, frames_per_sec=0.0, ts_ms=303_000) is None
    # nothing wanted, or no gateway at all (gateway_stall covers that): no silence alert
    assert FeedWatch(1).observe(wanted=0, alive=True, frames_per_sec=0.0, ts_ms=10**9) is None
    dead = FeedWatch(1)
    assert dead.observe(wanted=3, alive=False, frames_per_sec=0.0, ts_ms=0) is None
    assert dead.observe(wanted=3, alive=False, frames_per_sec=0.0, ts_ms=10**9) is None


def _alert(kind: str, subject: str, ts: int) -> Alert:
    return Alert(kind, subject, "critical", "x", ts)


def test_throttle_dedups_per_key_and_limits_the_rate() -> None:
    t = Throttle(dedup_ms=60_000, max_per_minute=3)
    assert t.allow(_alert("halt", "halt", 0))
    assert not t.allow(_alert("halt", "halt", 30_000))  # same key within dedup
    assert t.allow(_alert("worker_dead", "w1", 30_000))
    assert t.allow(_alert("worker_dead", "w2", 30_000))
    assert not t.allow(_alert("worker_dead", "w3", 40_000))  # 3 per minute reached
    assert t.take_suppressed() == 2
    assert t.allow(_alert("worker_dead", "w3", 61_000))  # the first send left the window
    assert t.allow(_alert("halt", "halt", 120_000))  # dedup expired


def test_payloads_generic_and_telegram() -> None:
    a = Alert("halt", "halt", "critical", "Kill switch set to halt by cli", 123)
    generic = payload(a, "generic", "pf", suppressed=2)
    assert generic == {"source": "polyfleet", "namespace": "pf", "kind": "halt", "subject": "halt",
                       "severity": "critical", "ts": 123, "suppressed": 2,
                       "text": "Kill switch set to halt by cli (2 similar alert(s) suppressed since the last one)"}
    tg = payload(a, "telegram", "pf", chat_id="-100123")
    assert set(tg) == {"chat_id", "text", "disable_web_page_preview"}
    assert tg["chat_id"] == "-100123"
    assert "polyfleet [pf] halt: Kill switch" in tg["text"]
