"""Outcome ids and market systems (shared/venue/ids.py): chosen by Gamma version, checked against
the id's shape by the same rule the official SDK signs by."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from polymarket._internal.protocol import decode_v2_outcome_position_id, is_v2_position_id

from shared.venue.errors import UnknownMarketVersion, VenueSetupError
from shared.venue.ids import (
    OutcomeId,
    in_v2_namespace,
    outcome,
    system_of,
    v2_condition_id,
    v2_condition_of,
    v2_position_id,
)

V1_TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def test_the_system_is_the_markets_gamma_version() -> None:
    assert system_of("v1") == "v1"
    assert system_of("v2") == "v2"
    assert system_of(None) == "v1"  # listed before Protocol V2 gave markets a version


def test_an_unknown_version_is_a_setup_error_that_names_the_fix() -> None:
    with pytest.raises(UnknownMarketVersion) as err:
        system_of("v3", "0xabc")
    assert isinstance(err.value, VenueSetupError)
    assert "v3" in str(err.value)
    assert "fix: upgrade polyfleet" in str(err.value)


def test_an_id_that_contradicts_its_markets_version_is_refused() -> None:
    v2 = v2_position_id(v2_condition_id(1, bytes(range(1, 17))), 0)
    assert outcome(V1_TOKEN, "v1") == OutcomeId(V1_TOKEN, "v1")
    assert outcome(v2, "v2") == OutcomeId(v2, "v2")
    with pytest.raises(UnknownMarketVersion):
        outcome(v2, "v1")
    with pytest.raises(UnknownMarketVersion):
        outcome(V1_TOKEN, "v2")
    with pytest.raises(UnknownMarketVersion):
        outcome("0xnot-a-number", "v1")


def test_balances_are_asked_by_the_systems_asset_type() -> None:
    assert OutcomeId(V1_TOKEN, "v1").asset_type == "CONDITIONAL"
    assert OutcomeId("1", "v2").asset_type == "CONDITIONAL-V2"


@given(st.integers(min_value=0, max_value=(1 << 256) - 1))
def test_the_v2_namespace_rule_is_the_sdks(value: int) -> None:
    assert in_v2_namespace(str(value)) == is_v2_position_id(str(value))


@given(st.sampled_from([1, 2, 3]), st.binary(min_size=0, max_size=18), st.sampled_from([0, 1]))
def test_v2_ids_built_here_are_v2_ids_to_the_sdk(module: int, body: bytes, index: int) -> None:
    cid = v2_condition_id(module, body)
    pid = v2_position_id(cid, index)
    assert is_v2_position_id(pid)
    decoded = decode_v2_outcome_position_id(pid)
    assert decoded.outcome_index == index
    assert cid.startswith(decoded.condition_id)
    assert v2_condition_of(pid) == (cid, index)
