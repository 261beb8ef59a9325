"""Where the venue is: every URL and contract address of one deployment, in one object.

Production is the official SDK's own production environment; the sim serves its environment as
JSON at ``GET /_sim/environment`` with the field names of the SDK's environment config, so the
unmodified SDK can be pointed at it. No contract address is typed anywhere else in polyfleet
(docs/venue.md, "Environments").

The SDK builds environments only through a private constructor; :meth:`VenueEnvironment.to_sdk`
is the one place that calls it (polymarket-client is pinned in uv.lock for that reason, and
tests/unit/test_venue_environment.py fails if the SDK's config fields move).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.config import PolymarketSection, Secrets

# The SDK's environment config fields (polymarket-client, pinned in uv.lock), spelled out here so a
# process that only reads the sim's environment (the sim itself, the gateway, the collector, the
# orchestrator) never imports the SDK: its package imports every client and model, about 0.8 s of CPU
# per process start. The modules that sign or send (account, orders, positions) import it at start-up.
# tests/unit/test_venue_environment.py fails if the SDK's fields move.
REQUIRED_FIELDS = (
    "chain_id", "wallet_derivation", "collateral_token", "conditional_tokens", "neg_risk_adapter",
    "collateral_adapter", "neg_risk_collateral_adapter", "standard_exchange", "neg_risk_exchange",
    "auto_redeem_operator", "safe_multisend", "relay_hub", "clob_url", "clob_market_ws_url", "clob_user_ws_url",
    "relayer_url", "gamma_url", "data_url", "rfq_url", "rtds_ws_url", "sports_ws_url", "rpc_url",
)
OPTIONAL_FIELDS = (
    "exchange_v3", "protocol_v2_router", "binary_module", "neg_risk_module", "combinatorial_module",
    "position_manager", "rfq_quoter_ws_url", "rfq_quoter_ws_headers", "builder_gateway_url",
    "collateral_return_url", "perps_url", "perps_ws_url", "realtime_ws_url", "realtime_ws_headers",
    "perps_deposit_contract", "relayer_max_polls", "relayer_poll_frequency_ms",
)
# The fields that hold a contract address (in production every one of them is set).
CONTRACT_FIELDS = (
    "collateral_token", "conditional_tokens", "neg_risk_adapter", "collateral_adapter",
    "neg_risk_collateral_adapter", "standard_exchange", "neg_risk_exchange", "auto_redeem_operator",
    "safe_multisend", "relay_hub", "exchange_v3", "protocol_v2_router", "binary_module", "neg_risk_module",
    "combinatorial_module", "position_manager", "perps_deposit_contract",
)
WALLET_DERIVATION_FIELDS = ("proxy_factory", "proxy_implementation", "safe_factory", "safe_init_code_hash",
                            "deposit_wallet_factory", "deposit_wallet_implementation", "deposit_wallet_beacon")


@dataclass(frozen=True, slots=True)
class VenueEnvironment:
    """One deployment of the venue. ``config`` holds the SDK's environment config fields as plain
    JSON values (``chain_id``, every URL, every contract address, ``wallet_derivation``, ...)."""

    name: str
    config: dict[str, Any] = field(repr=False)

    @property
    def chain_id(self) -> int:
        return int(self.config["chain_id"])

    def url(self, name: str) -> str:
        """A URL field (``clob_url``, ``gamma_url``, ``data_url``, ``clob_market_ws_url``, ...)."""
        return str(self.config[name]).rstrip("/")

    def address(self, name: str) -> str:
        """A contract address field (``collateral_token``, ``standard_exchange``, ``exchange_v3``, ...)."""
        value = str(self.config[name])
        if not (value.startswith("0x") and len(value) == 42):
            raise ValueError(f"environment {self.name}: {name} is not an address: {value!r}")
        return value

    @property
    def wallet_derivation(self) -> dict[str, str]:
        return dict(self.config["wallet_derivation"])

    def with_urls(self, overrides: dict[str, str]) -> VenueEnvironment:
        """This environment with some URL fields replaced (``polymarket.url_overrides``)."""
        if not overrides:
            return self
        return VenueEnvironment(self.name, {**self.config, **overrides})

    def to_json(self) -> dict[str, Any]:
        return dict(self.config)

    @classmethod
    def from_json(cls, name: str, raw: dict[str, Any]) -> VenueEnvironment:
        """Check ``raw`` has every field the SDK's config requires, and keep it."""
        missing = sorted(set(REQUIRED_FIELDS) - set(raw))
        derivation = raw.get("wallet_derivation")
        if not isinstance(derivation, dict):
            missing.append("wallet_derivation")
        else:
            missing += [f"wallet_derivation.{k}" for k in WALLET_DERIVATION_FIELDS if k not in derivation]
        if missing:
            raise ValueError(f"environment {name} lacks {', '.join(missing)}")
        known = {*REQUIRED_FIELDS, *OPTIONAL_FIELDS}
        return cls(name, {k: v for k, v in raw.items() if k in known})

    def to_sdk(self) -> Any:
        """The SDK's ``Environment`` for this deployment (private SDK constructor: see module doc)."""
        from polymarket._internal.environment import create_environment
        from polymarket.environments import _EnvironmentConfig, _WalletDerivation

        cfg = dict(self.config)
        cfg["wallet_derivation"] = _WalletDerivation(**cfg["wallet_derivation"])
        return create_environment(name=self.name, config=_EnvironmentConfig(**cfg))


def production() -> VenueEnvironment:
    """The SDK's production environment."""
    from polymarket._internal.environment import PRODUCTION_CONFIG

    raw = {f.name: getattr(PRODUCTION_CONFIG, f.name) for f in dataclasses.fields(PRODUCTION_CONFIG)}
    raw["wallet_derivation"] = {k: getattr(PRODUCTION_CONFIG.wallet_derivation, k) for k in WALLET_DERIVATION_FIELDS}
    return VenueEnvironment("production", raw)


async def fetch_sim_environment(sim_url: str, timeout_s: float = 60.0) -> VenueEnvironment:
    """The sim's environment from ``{sim_url}/_sim/environment``, waiting up to ``timeout_s`` for
    the sim to answer (it may still be starting beside us)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last = ""
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            try:
                resp = await http.get(f"{sim_url.rstrip('/')}/_sim/environment")
                resp.raise_for_status()
                return VenueEnvironment.from_json("sim", resp.json())
            except (httpx.HTTPError, ValueError) as exc:
                last = str(exc) or type(exc).__name__
            if asyncio.get_running_loop().time() >= deadline:
                raise ConnectionError(f"the sim at {sim_url} did not serve /_sim/environment within "
                                      f"{timeout_s:.0f} s: {last}")
            await asyncio.sleep(0.5)


async def resolve_environment(pm: PolymarketSection, mode: str, timeout_s: float = 60.0) -> VenueEnvironment:
    """The environment a service talks to: the sim's (sim mode, or ``environment: sim``; waited for
    ``timeout_s``) or the SDK's production one, with ``polymarket.url_overrides`` applied."""
    if pm.resolved_environment(mode) == "sim":
        env = await fetch_sim_environment(pm.sim_url, timeout_s)
    else:
        env = production()
    return env.with_urls(pm.url_overrides)


def with_rpc_secret(env: VenueEnvironment, secrets: Secrets) -> VenueEnvironment:
    """``env`` with ``PF_POLYGON_RPC_URL`` as its ``rpc_url`` when set: providers put their API key
    in the URL, so it is a secret, never config (docs/operations.md)."""
    return env.with_urls({"rpc_url": secrets.polygon_rpc_url}) if secrets.polygon_rpc_url else env
