"""The venue's taker fee (docs/venue.md F1): the formula, who pays, and the recorded live fill."""

from __future__ import annotations

import pytest

from shared.venue.fees import FeeSchedule
from shared.venue.gamma import TokenMeta, parse_market, token_meta


def test_a_live_taker_fill_costs_what_the_venue_charged() -> None:
    """A live taker fill reported on 2026-08-04 (docs/venue.md F1): BUY 25 @ 0.13 on a market with
    ``fd {r: 0.05, e: 1}`` spent 3.39 pUSD: 3.25 notional and 0.14 fee (the balance has cents)."""
    fee = FeeSchedule(0.05, 1.0).fee(25, 0.13)
    assert fee == pytest.approx(0.141375, abs=1e-5)
    assert round(25 * 0.13 + fee, 2) == 3.39


def test_only_the_taker_pays_and_the_exponent_bends_the_curve() -> None:
    f = FeeSchedule(0.07, 2.0)
    assert f.of_trade("MAKER", 100, 0.5) == 0.0
    assert f.of_trade("TAKER", 100, 0.5) == pytest.approx(100 * 0.07 * 0.25 ** 2)
    assert f.of_trade("taker", 100, 0.5) == f.of_trade("TAKER", 100, 0.5)
    assert FeeSchedule().fee(100, 0.5) == 0.0  # no schedule, no fee
    assert f.fee(100, 0.99) < f.fee(100, 0.5)  # cheapest at the edges


def test_gammas_fee_schedule_reaches_the_token_metadata_and_its_hash() -> None:
    row = {"id": "1", "conditionId": "0xc", "clobTokenIds": '["11", "22"]', "outcomes": '["Yes", "No"]',
           "feesEnabled": True, "feeSchedule": {"rate": 0.04, "exponent": 1, "takerOnly": True, "rebateRate": 0.2}}
    meta = token_meta(parse_market(row), "11")
    assert (meta.fee_rate, meta.fee_exponent) == (0.04, 1.0)
    assert TokenMeta.from_hash(meta.to_hash()) == meta
    old = {k: v for k, v in meta.to_hash().items() if not k.startswith("fee_")}  # a hash from before the field
    back = TokenMeta.from_hash(old)
    assert back is not None
    assert back.fee_rate is None
