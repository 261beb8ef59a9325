"""A copy let through without a book never BUYs above the leader's limit (services/maker_worker/copycap.py)."""

from __future__ import annotations

import pytest

from services.maker_worker.copycap import buy_cap, over_cap


def test_the_cap_is_the_leaders_price_plus_its_limit() -> None:
    cap = buy_cap({"copy": {"leader_price": 0.50, "max_slippage_bps": 300, "guard": "no book"}})
    assert cap == pytest.approx(0.515)
    assert over_cap(cap, "BUY", 0.51) is None
    assert over_cap(cap, "BUY", 0.515) is None  # at the limit is within it
    reason = over_cap(cap, "BUY", 0.52)
    assert reason is not None
    assert "0.5200" in reason
    assert "0.5150" in reason
    assert over_cap(cap, "SELL", 0.99) is None  # sells are never capped


@pytest.mark.parametrize("params", [
    {},  # not a copy
    {"copy": {"guard": "passed", "account": "0xa"}},  # checked against the book already
    {"copy": {"leader_price": 0.5, "max_slippage_bps": 0}},  # guard off
    {"copy": {"leader_price": 0, "max_slippage_bps": 300}},
    {"copy": {"leader_price": 1.2, "max_slippage_bps": 300}},
    {"copy": {"leader_price": "x", "max_slippage_bps": 300}},
    {"copy": "junk"},
])
def test_no_cap_without_a_leader_price_and_a_limit(params: dict[str, object]) -> None:
    assert buy_cap(params) is None
    assert over_cap(buy_cap(params), "BUY", 0.99) is None
