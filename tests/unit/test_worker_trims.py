"""Partial exits are done once across owners (services/maker_worker/trims.py) and ride in every
START (shared/copy_rules.py with_trim)."""

from __future__ import annotations

import json

import pytest

from services.maker_worker.trims import DONE_KEPT, TrimQueue
from shared.copy_rules import TRIMS_KEPT, with_trim


def test_a_trim_is_done_once_and_asking_again_changes_nothing() -> None:
    q = TrimQueue()
    assert q.add("a", 0.4)
    assert not q.add("a", 0.4)  # the same command read twice
    assert q.take() == 0.4
    assert not q  # nothing pending
    assert not q.add("a", 0.4)  # done already
    assert q.add("", 0.25)  # an unnamed one (an older orchestrator) is always done
    assert q.add("", 0.25)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_a_fraction_outside_zero_one_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        TrimQueue().add("x", fraction)


def test_the_next_owner_does_what_the_last_had_not_and_nothing_it_had() -> None:
    last = TrimQueue()
    last.add_all([["a", 0.5], ["b", 0.2]])
    last.take()  # "a" done; "b" asked, not done when the owner died
    nxt = TrimQueue()
    nxt.add_all([["a", 0.5], ["b", 0.2], ["c", 0.1], "junk", ["d", "x"], ["e", 2]])  # its START: malformed skipped
    nxt.restore(last.dump())
    assert nxt.pending == [("b", 0.2), ("c", 0.1)]
    assert nxt.done == ["a"]
    fresh = TrimQueue()
    fresh.restore(None)  # no snapshot: nothing done, nothing pending
    assert (fresh.pending, fresh.done) == ([], [])


def test_done_ids_are_bounded() -> None:
    q = TrimQueue()
    for i in range(DONE_KEPT + 5):
        q.add(str(i), 0.1)
        q.take()
    assert len(q.done) == DONE_KEPT
    assert q.done[-1] == str(DONE_KEPT + 4)


def test_the_start_params_keep_every_trim_asked_once_newest_last() -> None:
    params = json.dumps({"maker_strategy": {"order_size": 10}})
    params = with_trim(params, "s1", 0.4)
    params = with_trim(params, "s1", 0.4)  # the same signal again: one entry
    params = with_trim(params, "s2", 0.25)
    got = json.loads(params)
    assert got["trims"] == [["s1", 0.4], ["s2", 0.25]]
    assert got["maker_strategy"] == {"order_size": 10}
    for i in range(TRIMS_KEPT + 3):
        params = with_trim(params, f"n{i}", 0.1)
    assert len(json.loads(params)["trims"]) == TRIMS_KEPT
    assert json.loads(with_trim(None, "a", 0.5)) == {"trims": [["a", 0.5]]}
