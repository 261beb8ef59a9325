"""services/redeemer/plan.py: which flagged positions are redeemed now, grouped by market, and the
retry backoff of a failed redeem."""

from __future__ import annotations

import json

from services.redeemer.plan import Flagged, Retries, plan
from shared.backoff import Backoff


def entry(token: str, cid: str = "c1", won: bool = True, resolved_at: int = 1_000, **over: object) -> Flagged:
    raw = json.dumps({"condition_id": cid, "token_id": token, "won": won, "market_version": "v2",
                      "neg_risk": False, "resolved_at": resolved_at, **over})
    f = Flagged.parse(token, raw)
    assert f is not None
    return f


def test_an_entry_that_cannot_be_read_is_none() -> None:
    assert Flagged.parse("t", "{not json") is None
    assert Flagged.parse("t", json.dumps({"token_id": "t"})) is None  # no condition id
    assert entry("t").market_version == "v2"
    assert Flagged.parse("t", json.dumps({"condition_id": "c", "won": False})).market_version == "v1"  # type: ignore[union-attr]


def test_a_market_is_redeemed_once_for_all_its_flagged_tokens_when_none_is_in_use() -> None:
    flagged = [entry("yes"), entry("no", won=False), entry("other", cid="c2")]
    tokens = {"yes": {"state": "done"}, "no": {"state": "done"}, "other": {"state": "error"}}
    due, waiting = plan(flagged, tokens, now_ms=2_000, settle_wait_ms=60_000)
    assert [(d.condition_id, [f.token_id for f in d.tokens]) for d in due] == [("c1", ["no", "yes"]),
                                                                              ("c2", ["other"])]
    assert waiting == {}


def test_a_session_still_holding_one_outcome_holds_back_its_whole_market() -> None:
    flagged = [entry("yes"), entry("no", won=False)]
    due, waiting = plan(flagged, {"yes": {"state": "exiting"}, "no": {"state": "done"}}, 2_000, 60_000)
    assert due == []
    assert waiting == {"yes": "its session is still exiting", "no": "another outcome of its market waits"}


def test_pending_trades_hold_it_back_until_settle_wait_has_passed() -> None:
    tokens = {"yes": {"state": "done", "pending_trades": "2"}}
    due, waiting = plan([entry("yes", resolved_at=1_000)], tokens, now_ms=30_000, settle_wait_ms=60_000)
    assert (due, waiting) == ([], {"yes": "2 trade(s) not settled yet"})
    due, _ = plan([entry("yes", resolved_at=1_000)], tokens, now_ms=61_000, settle_wait_ms=60_000)
    assert [d.condition_id for d in due] == ["c1"]  # a trade never reported final does not block it forever


def test_a_failed_redeem_waits_out_a_growing_backoff_and_a_success_clears_it() -> None:
    retries = Retries(Backoff(max_attempts=100, initial_backoff_sec=5, backoff_multiplier=2, max_backoff_sec=300,
                              jitter_fraction=0))
    assert retries.due("c1", 0.0)
    assert retries.failed("c1", 100.0) == (1, 5.0)
    assert not retries.due("c1", 104.0)
    assert retries.due("c1", 105.0)
    assert retries.failed("c1", 105.0) == (2, 10.0)
    assert retries.due("c2", 105.0)  # per market
    retries.done("c1")
    assert retries.due("c1", 105.0)
