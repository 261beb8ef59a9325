"""The worker's own view of its lease (services/maker_worker/lease.py): when may it post an order?"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.maker_worker.lease import LeaseClock


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def lease(lease_ms: int = 2000, margin_ms: int = 500, commands_fresh: bool = True) -> tuple[LeaseClock, Clock]:
    clock = Clock()
    lc = LeaseClock(lease_ms, margin_ms, clock)
    if commands_fresh:  # these tests are about the lease: the command stream is read all the time
        lc.commands_read(1e12)
    return lc, clock


def test_nothing_is_sent_before_the_first_renewal() -> None:
    lc, clock = lease()
    assert not lc.may_send(clock.t)


def test_a_check_read_inside_an_unbroken_tenure_may_send_until_the_margin() -> None:
    lc, clock = lease()
    lc.renewed(100.0, 100.01)  # the key lives at least until 102.0
    check = clock.t = 100.02
    assert lc.may_send(check)
    clock.t = 101.5  # 0.5 s left: exactly the margin
    assert lc.may_send(check)
    clock.t = 101.51
    assert not lc.may_send(check)  # the POST might land after the key expired
    lc.renewed(101.4, 101.6)  # landed before 102.0: the same tenure, now until 103.4
    assert lc.may_send(check)
    assert lc.tenures == 1


def test_a_renewal_that_ends_after_the_key_may_have_expired_starts_a_new_tenure() -> None:
    lc, clock = lease()
    lc.renewed(100.0, 100.01)
    check = 100.5  # the ownership read before the break proves nothing afterwards
    lc.renewed(101.9, 102.3)  # sent in time but answered late: it may have landed after 102.0
    clock.t = 102.4
    assert lc.tenures == 2
    assert not lc.may_send(check)
    assert lc.may_send(102.3)  # a check read after the renewal's answer
    assert not lc.may_send(102.29)


def test_a_worker_that_has_not_read_its_commands_lately_sends_nothing() -> None:
    """A STOP (hand-back) written after the last read began is at most a lease old when the
    orchestrator may move the token anyway: the order must land a margin before that."""
    lc, clock = lease(commands_fresh=False)
    lc.renewed(100.0, 100.0)
    assert not lc.may_send(clock.t)  # never read: a STOP may be waiting
    lc.commands_read(100.0)
    clock.t = 101.5
    assert lc.may_send(100.0)  # 101.5 + 0.5 <= 100.0 + 2.0
    lc.renewed(101.5, 101.5)  # the lease goes on, the command loop does not
    clock.t = 101.6
    assert not lc.may_send(100.0)
    lc.commands_read(101.55)
    assert lc.may_send(100.0)
    lc.commands_read(100.2)  # an older read finishing late changes nothing
    assert lc.commands_read_at == 101.55


def test_a_revoked_lease_sends_nothing() -> None:
    lc, clock = lease()
    lc.renewed(100.0, 100.0)
    lc.revoke()
    assert not lc.may_send(clock.t)


@given(st.lists(st.tuples(st.floats(0, 3), st.floats(0, 3)), min_size=1, max_size=30),
       st.floats(0, 3), st.floats(0, 3))
def test_a_send_is_allowed_only_inside_one_tenure_that_covers_check_and_post(
        renewals: list[tuple[float, float]], check_at: float, post_gap: float) -> None:
    """Replaying renewals (gap before the SET, its round trip) against the key's true life: whenever
    may_send says yes, the key existed from the check to the post plus the margin."""
    lc, clock = lease(1000, 200)
    t, expires = 0.0, -1.0  # expires: the key's real expiry (it lands at the end of the round trip, worst case)
    alive: list[tuple[float, float]] = []  # intervals during which the key surely exists
    for gap, rtt in renewals:
        t += gap
        start, end = t, t + rtt
        landed = end  # Redis applied it somewhere in [start, end]: take the latest, as the tenure logic must
        if landed > expires:
            alive.append((landed, start + 1.0))  # a break (or the first SET): a new interval
        else:
            alive[-1] = (alive[-1][0], max(alive[-1][1], start + 1.0))
        expires = max(expires, start + 1.0)
        lc.renewed(start, end)
        t = end
    check = t + check_at * 0.1
    clock.t = check + post_gap
    if lc.may_send(check):
        assert any(lo <= check and clock.t + 0.2 <= hi for lo, hi in alive)
