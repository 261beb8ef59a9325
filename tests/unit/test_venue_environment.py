"""The venue environment (shared/venue/environment.py): production is the SDK's, a sim's comes as
JSON with the SDK's field names, and both become an SDK Environment."""

from __future__ import annotations

import dataclasses

import pytest
from polymarket._internal.environment import PRODUCTION_CONFIG, get_environment_config
from polymarket.environments import _EnvironmentConfig

from shared.venue.environment import (
    CONTRACT_FIELDS,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    WALLET_DERIVATION_FIELDS,
    VenueEnvironment,
    production,
)


def test_the_field_lists_are_the_sdks() -> None:
    """The environment's field lists are spelled out so only the modules that sign import the SDK;
    this fails the day the SDK's environment config moves."""
    fields = dataclasses.fields(_EnvironmentConfig)
    required = tuple(f.name for f in fields
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    assert required == REQUIRED_FIELDS
    assert tuple(f.name for f in fields if f.name not in required) == OPTIONAL_FIELDS
    prod = {f.name: getattr(PRODUCTION_CONFIG, f.name) for f in fields}
    assert tuple(k for k, v in prod.items() if isinstance(v, str) and v.startswith("0x")
                                    and len(v) == 42) == CONTRACT_FIELDS
    assert tuple(f.name for f in dataclasses.fields(PRODUCTION_CONFIG.wallet_derivation)) == WALLET_DERIVATION_FIELDS


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
