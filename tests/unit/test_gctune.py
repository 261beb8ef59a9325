"""GC tuning: thresholds raised, start-up objects frozen, pauses recorded per generation."""

from __future__ import annotations

import gc
from collections.abc import Iterator

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
    assert gc.get_threshold() == (gctune.GEN0_THRESHOLD, gctune.GEN1_THRESHOLD, gctune.GEN2_THRESHOLD)
    assert gc.get_freeze_count() > 0
    before = gctune.pauses()["gc2"]["count"]
    gc.collect()
    after = gctune.pauses()["gc2"]
    assert after["count"] == before + 1
    assert after["max_ms"] >= 0.0
    gctune.tune()  # idempotent: one callback
    assert gc.callbacks.count(gctune._on_gc) == 1


def test_disabled_keeps_the_defaults_but_still_records(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    gctune.tune(enabled=False)
    assert gc.get_threshold() == (700, 10, 10)
    assert gctune._on_gc in gc.callbacks
