"""GC tuning: thresholds raised, start-up objects frozen, pauses recorded per generation."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from shared import gctune


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()
    if gctune._on_gc in gc.callbacks:
        gc.callbacks.remove(gctune._on_gc)


def test_tune_raises_thresholds_freezes_and_records_pauses(restore_gc: None) -> None:
    gctune.tune()
    assert gc.get_threshold() == (20_000, 20, 20)  # CPython's defaults are (700, 10, 10)
    assert gc.get_freeze_count() > 0
    before = gctune.pauses()["gc2"]["count"]
    gc.collect()
    after = gctune.pauses()["gc2"]
    assert after["count"] == before + 1  # the callback sees real collections
    gctune.tune()  # idempotent: one callback
    assert gc.callbacks.count(gctune._on_gc) == 1


def test_a_pause_is_the_time_from_start_to_stop_per_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector's own clock, driven by hand: each pause is booked to its generation, totals
    add up and the worst one is kept."""
    monkeypatch.setattr(gctune, "_stats", {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]})
    clock = iter([10.0, 10.0125, 20.0, 20.0025, 30.0, 30.5])
    monkeypatch.setattr(gctune, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    was_enabled = gc.isenabled()
    gc.disable()  # no real collection may read the scripted clock meanwhile
    try:
        for generation in (1, 1, 2):
            gctune._on_gc("start", {"generation": generation})
            gctune._on_gc("stop", {"generation": generation})
    finally:
        if was_enabled:
            gc.enable()
    p = gctune.pauses()
    assert p["gc0"] == {"count": 0, "total_ms": 0.0, "max_ms": 0.0}
    assert p["gc1"] == {"count": 2, "total_ms": 15.0, "max_ms": 12.5}
    assert p["gc2"] == {"count": 1, "total_ms": 500.0, "max_ms": 500.0}


def test_disabled_keeps_the_defaults_but_still_records(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    gctune.tune(enabled=False)
    assert gc.get_threshold() == (700, 10, 10)
    assert gctune._on_gc in gc.callbacks
