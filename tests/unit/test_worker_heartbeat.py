"""The order heartbeats' decisions (services/maker_worker/heartbeat.py): when to send, when the
order gate closes and opens, what is said about it. No Redis, no venue, no clock: times are passed in."""

from __future__ import annotations

import math

import pytest

from services.maker_worker.heartbeat import HeartbeatState, HeartbeatTimes, VenueHeartbeat
from services.maker_worker.lease import LeaseClock
from shared.config import ConfigError, OrderHeartbeatsSection, Settings
from shared.keys import Keys
from shared.venue.errors import VenueUnavailable

TIMES = HeartbeatTimes(interval_s=5.0, retry_s=1.0, venue_timeout_s=10.0, margin_s=3.0)


def test_the_gate_is_closed_until_the_first_accepted_send_and_a_send_is_due_at_once() -> None:
    s = HeartbeatState(TIMES)
    assert not s.sendable(100.0)  # an order placed before the switch is armed would survive a crash
    assert s.next_send() == -math.inf
    s.accepted(100.0)
    assert s.sendable(100.0)
    assert s.next_send() == 105.0


def test_the_gate_closes_the_margin_before_the_venue_deadline_counted_from_the_send_start() -> None:
    s = HeartbeatState(TIMES)
    s.accepted(100.0)
    assert s.sendable(106.99)
    assert not s.sendable(107.0)  # 10 s deadline - 3 s margin
    assert s.closes_at() == 107.0


def test_a_failed_send_is_retried_sooner_and_the_gate_stays_open_while_time_remains() -> None:
    s = HeartbeatState(TIMES)
    s.accepted(100.0)
    s.failed(105.0, "VenueUnavailable: 503")
    assert s.next_send() == 106.0
    assert s.sendable(106.0)
    assert s.change(106.0) is None
    s.failed(106.0, "VenueUnavailable: 503")
    assert s.next_send() == 107.0
    assert s.change(107.0) == "closed"
    assert s.change(107.5) is None  # said once
    s.accepted(108.0)
    assert s.next_send() == 113.0  # back to the interval
    assert s.change(108.1) == "reopened"
    assert s.change(108.2) is None
    assert s.failing_since is None
    assert s.last_error == ""


def test_a_hanging_send_closes_the_gate_by_time_alone() -> None:
    s = HeartbeatState(TIMES)
    s.accepted(100.0)
    s.last_attempt = 105.0  # a send began and never came back
    assert s.change(106.0) is None
    assert s.change(107.0) == "closed"


def test_a_worker_that_never_got_a_beat_through_says_so_after_as_long_as_the_gate_would_stay_open() -> None:
    s = HeartbeatState(TIMES)
    s.failed(0.0, "TimeoutError")
    assert s.change(6.9) is None
    assert s.wake_in(1.0) == pytest.approx(0.01)  # the retry is due: no later than now
    s.failed(6.0, "TimeoutError")
    assert s.change(7.0) == "closed"


def test_the_loop_wakes_for_the_next_send_or_the_closing_whichever_comes_first() -> None:
    s = HeartbeatState(HeartbeatTimes(interval_s=5.0, retry_s=1.0, venue_timeout_s=10.0, margin_s=6.0))
    s.accepted(100.0)
    assert s.wake_in(100.0) == pytest.approx(4.0)  # closes at 104, before the send due at 105
    s2 = HeartbeatState(TIMES)
    s2.accepted(100.0)
    assert s2.wake_in(100.0) == pytest.approx(5.0)


def test_a_closed_venue_gate_keeps_an_order_from_an_otherwise_valid_lease() -> None:
    now = [0.0]
    lease = LeaseClock(10_000, 1000, clock=lambda: now[0])
    lease.renewed(0.0, 0.01)
    lease.commands_read(0.0)
    now[0] = 1.0
    assert lease.may_send(0.5)
    lease.venue_gate = lambda: False
    assert not lease.may_send(0.5)
    assert not lease.sendable()
    lease.venue_gate = lambda: True
    assert lease.may_send(0.5)


async def test_each_send_carries_the_id_the_last_answer_gave_and_a_425_counts_as_the_restart() -> None:
    now = [50.0]
    sent: list[str] = []
    answers: list[str | Exception] = ["id-1", "id-2", VenueUnavailable("restarting", status=425,
                                                                      restriction="restarting")]

    async def send(heartbeat_id: str) -> str:
        sent.append(heartbeat_id)
        got = answers.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    beat = VenueHeartbeat(send, OrderHeartbeatsSection(), None, Keys("pf"), "w1", clock=lambda: now[0])  # type: ignore[arg-type]
    assert not beat.sendable()
    await beat.beat()
    assert beat.sendable()
    now[0] = 55.0
    await beat.beat()
    now[0] = 60.0
    await beat.beat()
    assert sent == ["", "id-1", "id-2"]  # "" arms the switch; then the chain
    assert beat.heartbeat_id == "id-2"  # a failed send keeps the id it carried
    assert beat.state.restarting
    assert beat.state.failed_count == 1
    assert beat.sendable()  # 5 s since the last accepted send: 2 s of margin left
    now[0] = 62.0
    assert not beat.sendable()
    assert beat.summary()["venue_heartbeat"] == "failing"


@pytest.mark.parametrize(("section", "message"), [
    ({"interval_sec": 7}, "interval_sec .* must be below venue_timeout_sec - fail_closed_margin_sec"),
    ({"fail_closed_margin_sec": 10}, "fail_closed_margin_sec .* must be below venue_timeout_sec"),
    ({"retry_sec": 6}, "retry_sec .* must not exceed interval_sec"),
])
def test_heartbeat_settings_that_would_close_the_gate_on_schedule_are_refused(section: dict[str, float],
                                                                            message: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=message):
        Settings.model_validate({"order_heartbeats": section})
    assert Settings().order_heartbeats.interval_sec <= 5.0
