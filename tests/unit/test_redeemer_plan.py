"""services/redeemer/plan.py: which flagged positions are redeemed now, grouped by market, the
retry backoff of a failed redeem (kept in its pf:redeem:status entry), the operator's retry, and
whether a redeem of unknown outcome landed."""

from __future__ import annotations

import json

from services.redeemer.plan import Flagged, after_failure, landed, may_try, outcome_unknown, plan
from shared.backoff import Backoff
from shared.redemptions import RedeemStatus, TokenShares


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


def test_a_failed_redeem_waits_out_a_growing_backoff_kept_in_its_status() -> None:
    backoff = Backoff(max_attempts=100, initial_backoff_sec=5, backoff_multiplier=2, max_backoff_sec=300,
                      jitter_fraction=0)
    st = RedeemStatus("c1", "sent", tried_at=100_000)
    assert after_failure(st, "failed", "reverted", 100_000, backoff) == 5.0
    assert (st.state, st.attempts, st.next_at, st.reason) == ("failed", 1, 105_000, "reverted")
    again = RedeemStatus.parse("c1", st.to_json())  # what a restarted redeemer reads back
    assert again == st
    assert not may_try(again, 0, 104_999)
    assert may_try(again, 0, 105_000)
    assert after_failure(st, "unknown", "no outcome", 105_000, backoff) == 10.0  # doubling
    assert may_try(None, 0, 0)  # nothing known: due
    assert may_try(RedeemStatus("c1", "waiting"), 0, 0)


def test_an_operators_retry_makes_it_due_once_and_a_redeemed_market_is_never_sent_again() -> None:
    st = RedeemStatus("c1", "setup_error", attempts=3, tried_at=50_000, next_at=900_000)
    assert not may_try(st, 40_000, 60_000)  # asked before the last try: that try was the answer
    assert may_try(st, 55_000, 60_000)
    assert not may_try(RedeemStatus("c1", "redeemed", next_at=0), 99_000, 100_000)


def test_an_unknown_redeem_landed_only_when_nothing_is_left_of_what_was_held_before_it() -> None:
    held = [TokenShares("yes", True, 20.0), TokenShares("no", False, 0.0)]
    unknown = RedeemStatus("c1", "unknown", tokens=held)
    assert landed(unknown, {"yes": 0.0, "no": 0.0})
    assert not landed(unknown, {"yes": 20.0, "no": 0.0})  # dropped: still held, send again
    assert landed(RedeemStatus("c1", "sent", tokens=held), {"yes": 0.0})  # its sender stopped before the outcome
    assert not landed(RedeemStatus("c1", "failed", tokens=held), {"yes": 0.0, "no": 0.0})  # nothing was sent
    assert not landed(RedeemStatus("c1", "unknown", tokens=[TokenShares("yes", True, None)]), {"yes": 0.0})
    assert not landed(RedeemStatus("c1", "unknown", tokens=[TokenShares("yes", True, 0.0)]), {"yes": 0.0})
    assert outcome_unknown(unknown)
    assert not outcome_unknown(None)


def test_a_status_that_cannot_be_read_is_none() -> None:
    assert RedeemStatus.parse("c1", "{") is None
    assert RedeemStatus.parse("c1", json.dumps({"state": "lost", "tokens": []})) is None
    assert RedeemStatus.parse("c1", json.dumps({"state": "due"})) is None  # no tokens list
