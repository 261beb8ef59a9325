"""Ticks: the channel's JSON and the book hash carry the same fields and round-trip exactly."""

from __future__ import annotations

import json

import pytest

from shared.ticks import Tick

FULL = Tick(token_id="7132", seq=42, bid=0.41, ask=0.43, bid_size=120.5, ask_size=80.0, last=0.42,
            tick_size=0.01, ts_event=1_700_000_000_000, ts_recv=1_700_000_000_017)
EMPTY_BOOK = Tick(token_id="7132", seq=1, bid=None, ask=None, bid_size=0.0, ask_size=0.0, last=None,
                  tick_size=0.001, ts_event=1_700_000_000_000, ts_recv=1_700_000_000_001)
ONE_SIDED = Tick(token_id="7132", seq=7, bid=None, ask=0.999, bid_size=0.0, ask_size=5.0, last=0.998,
                 tick_size=0.001, ts_event=1, ts_recv=2, stale=True)
STALE = Tick(token_id="7132", seq=9, bid=0.1, ask=0.2, bid_size=1.0, ask_size=2.0, last=None, tick_size=0.01,
             ts_event=1, ts_recv=2, stale=True)
SAMPLES = [FULL, EMPTY_BOOK, ONE_SIDED, STALE]


@pytest.mark.parametrize("tick", SAMPLES)
def test_json_round_trip(tick: Tick) -> None:
    assert Tick.from_json(tick.to_json()) == tick
    assert Tick.from_json(tick.to_json().encode()) == tick


@pytest.mark.parametrize("tick", SAMPLES)
def test_hash_round_trip(tick: Tick) -> None:
    h = tick.to_hash()
    assert all(isinstance(v, str) for v in h.values())
    assert Tick.from_hash(h) == tick


def test_missing_sides_are_null_in_json_and_absent_from_the_hash() -> None:
    body = json.loads(EMPTY_BOOK.to_json())
    assert body["bid"] is None
    assert body["ask"] is None
    assert body["last"] is None
    h = EMPTY_BOOK.to_hash()
    assert "bid" not in h
    assert "ask" not in h
    assert "last" not in h


def test_channel_and_hash_carry_the_same_fields() -> None:
    assert set(json.loads(FULL.to_json())) == set(FULL.to_hash())


def test_stale_flag_is_a_bool_both_ways() -> None:
    assert STALE.to_hash()["stale"] == "1"
    assert FULL.to_hash()["stale"] == "0"
    assert json.loads(STALE.to_json())["stale"] is True
    assert Tick.from_hash(FULL.to_hash()).stale is False  # type: ignore[union-attr]


def test_timestamps_are_kept_for_latency() -> None:
    back = Tick.from_json(FULL.to_json())
    assert (back.ts_event, back.ts_recv) == (FULL.ts_event, FULL.ts_recv)
    assert isinstance(back.seq, int)
    assert isinstance(back.ts_event, int)


@pytest.mark.parametrize("h", [{}, {"seq": "1", "bid": "0.5"}])
def test_empty_or_partial_hash_is_no_tick(h: dict[str, str]) -> None:
    assert Tick.from_hash(h) is None


def test_unknown_fields_are_ignored() -> None:
    body = json.loads(FULL.to_json())
    body["future_field"] = "x"
    assert Tick.from_json(json.dumps(body)) == FULL
    assert Tick.from_hash({**FULL.to_hash(), "future_field": "x"}) == FULL


def test_ticks_are_immutable() -> None:
    with pytest.raises(AttributeError):
        FULL.bid = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("tick", SAMPLES)
def test_fast_encoders_match_the_generic_ones(tick: Tick) -> None:
    from dataclasses import asdict

    assert json.loads(tick.to_json()) == json.loads(json.dumps(asdict(tick)))
    args = tick.hash_args()
    assert dict(zip(args[::2], args[1::2], strict=True)) == tick.to_hash()


def test_non_finite_numbers_are_refused() -> None:
    bad = Tick(token_id="x", seq=1, bid=float("nan"), ask=None, bid_size=0.0, ask_size=0.0, last=None,
               tick_size=0.01, ts_event=1, ts_recv=1)
    with pytest.raises(ValueError, match="not finite"):
        bad.to_json()
