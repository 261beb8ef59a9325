"""The venue environment (shared/venue/environment.py): production is the SDK's, a sim's comes as
JSON with the SDK's field names, and both become an SDK Environment."""

from __future__ import annotations

import dataclasses

import pytest
from polymarket._internal.environment import PRODUCTION_CONFIG, get_environment_config

from shared.venue.environment import VenueEnvironment, production


def test_production_is_the_sdks_production_and_round_trips_through_json() -> None:
    env = production()
    assert env.chain_id == 137
    assert env.address("exchange_v3") == PRODUCTION_CONFIG.exchange_v3
    again = VenueEnvironment.from_json("copy", env.to_json())
    cfg = get_environment_config(again.to_sdk())
    for f in dataclasses.fields(PRODUCTION_CONFIG):
        assert getattr(cfg, f.name) == getattr(PRODUCTION_CONFIG, f.name), f.name


def test_an_environment_missing_a_required_field_names_it() -> None:
    raw = production().to_json()
    del raw["clob_url"]
    raw["wallet_derivation"] = {k: v for k, v in raw["wallet_derivation"].items() if k != "deposit_wallet_beacon"}
    with pytest.raises(ValueError, match=r"clob_url.*wallet_derivation.deposit_wallet_beacon"):
        VenueEnvironment.from_json("sim", raw)


def test_an_address_field_must_be_an_address() -> None:
    raw = production().to_json()
    raw["exchange_v3"] = "not-an-address"
    with pytest.raises(ValueError, match="exchange_v3"):
        VenueEnvironment.from_json("sim", raw).address("exchange_v3")
