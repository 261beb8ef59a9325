"""The backoff is a pure function: bounded, growing, jittered within its fraction, never raising."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.backoff import Backoff, honour_retry_after
from shared.config import RetryStrategySection

backoffs = st.builds(
    Backoff,
    max_attempts=st.integers(1, 50),
    initial_backoff_sec=st.floats(0.0, 60.0),
    backoff_multiplier=st.floats(1.0, 10.0),
    max_backoff_sec=st.floats(0.0, 600.0),
    jitter_fraction=st.floats(0.0, 1.0),
)
# connect(forever=True) keeps counting attempts for as long as Redis is down, so the attempt
# number is unbounded in practice: hours of outage are thousands of attempts.
attempts = st.integers(1, 100_000)
unit = st.floats(0.0, 1.0, exclude_max=True)


def _no_jitter(b: Backoff) -> Backoff:
    return Backoff(b.max_attempts, b.initial_backoff_sec, b.backoff_multiplier, b.max_backoff_sec, 0.0)


@given(backoffs, attempts, unit)
def test_delay_is_within_zero_and_the_cap(b: Backoff, attempt: int, r: float) -> None:
    d = b.delay(attempt, rand=lambda: r)
    assert math.isfinite(d)
    assert 0.0 <= d <= b.max_backoff_sec


@given(backoffs, st.integers(1, 10_000))
def test_without_jitter_delays_never_shrink(b: Backoff, attempt: int) -> None:
    b = _no_jitter(b)
    assert b.delay(attempt) <= b.delay(attempt + 1)


@given(backoffs, st.integers(1, 40), unit)
def test_jitter_stays_within_its_fraction(b: Backoff, attempt: int, r: float) -> None:
    base = _no_jitter(b).delay(attempt)
    d = b.delay(attempt, rand=lambda: r)
    lo = max(0.0, base * (1 - b.jitter_fraction))
    hi = min(b.max_backoff_sec, base * (1 + b.jitter_fraction))
    assert lo - 1e-9 <= d <= hi + 1e-9


def test_delays_grow_exponentially_until_the_cap() -> None:
    b = Backoff(initial_backoff_sec=0.5, backoff_multiplier=2.0, max_backoff_sec=5.0, jitter_fraction=0.0)
    assert [b.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_extremes() -> None:
    b = Backoff(initial_backoff_sec=1.0, backoff_multiplier=2.0, max_backoff_sec=100.0, jitter_fraction=0.2)
    assert b.delay(1, rand=lambda: 0.0) == pytest.approx(0.8)
    assert b.delay(1, rand=lambda: 0.5) == pytest.approx(1.0)
    assert b.delay(1, rand=lambda: 0.999999) == pytest.approx(1.2, abs=1e-5)


def test_a_very_late_attempt_still_gets_the_cap() -> None:
    b = Backoff(max_backoff_sec=5.0, jitter_fraction=0.0)
    assert b.delay(5_000) == 5.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_are_one_based(attempt: int) -> None:
    with pytest.raises(ValueError):
        Backoff().delay(attempt)


@given(st.integers(1, 50), st.integers(1, 200))
def test_exhausted_after_max_attempts(max_attempts: int, attempt: int) -> None:
    assert Backoff(max_attempts=max_attempts).exhausted(attempt) is (attempt >= max_attempts)


def test_from_config_copies_every_field() -> None:
    cfg = RetryStrategySection(max_attempts=7, initial_backoff_sec=0.1, backoff_multiplier=3.0,
                               max_backoff_sec=9.0, jitter_fraction=0.0)
    b = Backoff.from_config(cfg)
    assert b == Backoff(7, 0.1, 3.0, 9.0, 0.0)
    assert [b.delay(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.3, 0.9, 2.7])


@pytest.mark.parametrize(("computed", "retry_after", "cap", "expected"), [
    (1.0, None, 30.0, 1.0),
    (1.0, "", 30.0, 1.0),
    (1.0, "5", 30.0, 5.0),  # the server asks for longer: honour it
    (8.0, "5", 30.0, 8.0),  # ours is longer already
    (1.0, "120", 30.0, 30.0),  # capped
    (1.0, "2.5", 30.0, 2.5),
    (1.0, "Wed, 21 Oct 2015 07:28:00 GMT", 30.0, 1.0),  # HTTP-date form: ignored
    (1.0, "soon", 30.0, 1.0),
])
def test_honour_retry_after(computed: float, retry_after: str | None, cap: float, expected: float) -> None:
    assert honour_retry_after(computed, retry_after, cap) == pytest.approx(expected)


@given(st.floats(0.0, 100.0), st.one_of(st.none(), st.text(max_size=12),
                                         st.floats(allow_nan=True).map(str)), st.floats(0.0, 100.0))
def test_honour_retry_after_never_waits_less_than_computed_or_raises(computed: float, retry_after: str | None,
                                                                     cap: float) -> None:
    d = honour_retry_after(computed, retry_after, cap)
    assert d >= min(computed, cap) or d == computed
