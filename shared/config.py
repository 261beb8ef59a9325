"""Configuration: one YAML file read into frozen pydantic models, overridable from the environment.

* File: ``PF_CONFIG`` (default ``config/polyfleet.yaml``); ``config/polyfleet.example.yaml``
  documents every key. A missing file means "all defaults" (sim mode, no targets).
* Overrides: ``PF__SECTION__KEY=value`` (double underscore nesting), e.g.
  ``PF__SCHEDULER__MAX_CONCURRENT_JOBS=4``. Values are parsed as YAML scalars/flow collections.
* Unknown keys and bad values raise :class:`ConfigError` naming the key (``risk.max_notional_total``).
* Secrets are never read from the file: see :class:`Secrets`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.input_errors import InputError

DEFAULT_CONFIG_PATH = "config/polyfleet.yaml"
ENV_PREFIX = "PF__"
# A well-known throwaway key, valid only against sim_exchange (it holds nothing on any chain).
SIM_PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
SIM_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"  # its address (tests/unit/test_sim_venue.py checks)


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's hex/octal/sexagesimal integers: an unquoted 0x wallet
    address or a long token id stays text instead of silently becoming a number."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"),
                              list("-+0123456789"))


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader: no arbitrary objects


class ConfigError(InputError):
    """The configuration is invalid; the message names every offending key."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def refuse_renamed(data: Any, section: str, renamed: dict[str, str]) -> Any:
    """A ``mode="before"`` check: a config that still has an old key fails naming its new name."""
    if isinstance(data, dict):
        old = [k for k in renamed if k in data]
        if old:
            raise ValueError("; ".join(f"{section}.{k} was renamed {section}.{renamed[k]}" for k in old)
                             + " (every duration in seconds ends in _sec)")
    return data


# The execution keys docs/requirements.md (D3) spells with ``_seconds``, and their fields.
EXECUTION_REQUIREMENT_NAMES = {"order_interval_seconds": "order_interval_sec", "wait_seconds": "wait_sec",
                               "poll_interval_seconds": "poll_interval_sec"}


def accept_requirement_names(data: Any, section: str, names: dict[str, str]) -> Any:
    """A ``mode="before"`` step: keys that docs/requirements.md names with ``_seconds`` (users come
    with configs that use them) are read as their ``_sec`` field; giving both spellings is refused."""
    if isinstance(data, dict):
        both = [k for k, new in names.items() if k in data and new in data]
        if both:
            raise ValueError("; ".join(f"{section}.{k} and {section}.{names[k]} are the same setting: give one"
                                       for k in both))
        if any(k in data for k in names):
            data = {names.get(k, k): v for k, v in data.items()}
    return data


WalletKind = Literal["deposit", "eoa", "proxy", "safe"]
# Removed keys, and what took their place: a config that still has one fails naming the new home.
_POLYMARKET_MOVED = {
    "data_api_url": "the environment's data_url",
    "gamma_url": "the environment's gamma_url",
    "clob_url": "the environment's clob_url",
    "ws_market_url": "the environment's clob_market_ws_url",
    "rtds_url": "the environment's rtds_ws_url",
    "chain_id": "the environment's chain_id",
    "signature_type": "polymarket.wallet (deposit | eoa | proxy | safe)",
    "funder": "polymarket.wallet_address",
}
ENVIRONMENT_URL_FIELDS = ("clob_url", "clob_market_ws_url", "clob_user_ws_url", "relayer_url", "gamma_url",
                          "data_url", "rfq_url", "rtds_ws_url", "sports_ws_url", "rpc_url")


class PolymarketSection(Section):
    """Which venue, and which wallet trades on it (docs/venue.md, "Environments" and W-rules).

    Every URL and contract address comes from the venue environment: the official SDK's production
    environment, or the sim's (served at ``{sim_url}/_sim/environment``). ``environment: auto`` is
    the sim in sim mode and production otherwise. ``url_overrides`` replaces environment URLs (a
    proxy, a test's fault injector); addresses cannot be overridden."""

    environment: Literal["auto", "sim", "production"] = "auto"
    sim_url: str = "http://127.0.0.1:8700"
    wallet: WalletKind = "deposit"  # the venue's default wallet (docs/venue.md W1); eoa / proxy / safe stay
    wallet_address: str = ""  # empty: the wallet derived for the signing key (deposit wallet, proxy, Safe)
    url_overrides: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            moved = [f"polymarket.{k} was removed: use {_POLYMARKET_MOVED[k]}" for k in data if k in _POLYMARKET_MOVED]
            if moved:
                raise ValueError("; ".join(moved) + " (URLs and addresses come from the venue environment, "
                                 "docs/venue.md \"Environments\")")
        return data

    @model_validator(mode="after")
    def _check(self) -> PolymarketSection:
        unknown = sorted(set(self.url_overrides) - set(ENVIRONMENT_URL_FIELDS))
        if unknown:
            raise ValueError(f"polymarket.url_overrides: unknown URL field(s) {', '.join(unknown)} "
                             f"(known: {', '.join(ENVIRONMENT_URL_FIELDS)})")
        if self.wallet_address and not re.fullmatch(r"0x[0-9a-fA-F]{40}", self.wallet_address):
            raise ValueError(f"polymarket.wallet_address {self.wallet_address!r} is not a 0x-prefixed address")
        if self.wallet == "eoa" and self.wallet_address:
            raise ValueError("polymarket.wallet_address is for deposit, proxy and Safe wallets; an EOA trades "
                             "as the key's own address")
        return self

    def resolved_environment(self, mode: str) -> Literal["sim", "production"]:
        if self.environment != "auto":
            return self.environment
        return "sim" if mode == "sim" else "production"


class CopyRules(Section):
    """How a followed wallet's trades are copied (docs/copytrading.md): the copy's size, the guard
    before its first order, and how its exits follow the leader's. ``copytrade.copy`` is the
    default; a target's ``copy`` map overrides any of its keys for that wallet."""

    sizing: Literal["fixed", "percent", "proportional"] = "fixed"  # fixed: maker_strategy.order_size (shares)
    percent: float = 100.0  # percent: this % of the leader's notional (size x price)
    min_copy_usd: float = Field(0.0, ge=0)  # a copy below this is raised to it (0: no floor)
    max_copy_usd: float = Field(0.0, ge=0)  # a copy above this is cut to it (0: no cap)
    budget_usd: float = Field(0.0, ge=0)  # the leader's open copies together stay within this (0: no budget)
    exit_mode: Literal["fraction", "full"] = "fraction"  # a leader's partial sell sells that share of ours
    max_slippage_bps: float = Field(0.0, ge=0)  # guard: best ask over the leader's price by more skips (0: off)

    @field_validator("percent")
    @classmethod
    def _percent(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"percent must be >= 0 (a percentage of the leader's notional), got {value:g}")
        return value

    @model_validator(mode="after")
    def _budget_fits_a_copy(self) -> CopyRules:
        if self.max_copy_usd and self.max_copy_usd < self.min_copy_usd:
            raise ValueError(f"max_copy_usd ({self.max_copy_usd:g}) is below min_copy_usd ({self.min_copy_usd:g})")
        if self.budget_usd and self.budget_usd < self.min_copy_usd:
            raise ValueError(f"budget_usd ({self.budget_usd:g}) is below min_copy_usd ({self.min_copy_usd:g}): "
                             "no copy of this leader could ever be made")
        return self


class Target(Section):
    account: str
    min_size: float = Field(0.0, ge=0)
    enabled: bool = True
    copy_rules: dict[str, Any] = Field(default_factory=dict, alias="copy")  # overrides of copytrade.copy

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _account_shape(self) -> Target:
        acct = self.account
        if not (acct.startswith("0x") and len(acct) == 42):
            raise ValueError(f"account {acct!r} is not a 0x-prefixed 40-hex-digit address")
        return self


class ScorecardSection(Section):
    """The leader scorecard (docs/copytrading.md "Scorecard"): its copyability flags' thresholds and
    how much of each stream it reads (newest first; older entries are not counted)."""

    mm_window_min: float = Field(10.0, gt=0)  # both sides of one market within this many minutes ...
    mm_min_pairs: int = Field(3, ge=1)  # ... this many times flags a market-maker pattern
    hf_trades_per_hour: int = Field(60, ge=1)  # more trades than this in any hour flags high frequency
    read_signals: int = Field(20_000, ge=1, le=1_000_000)
    read_events: int = Field(50_000, ge=1, le=1_000_000)
    read_fills: int = Field(50_000, ge=1, le=1_000_000)


class BacktestSection(Section):
    """``polyfleet leaders backtest`` and ``GET /api/leaders/{address}/backtest`` (docs/copytrading.md
    "Backtest"): the fill model a leader's past trades are replayed with, and the bounds of a run."""

    slippage_bps: float = Field(50.0, ge=0, le=10_000)  # our fill: the reference price +/- this (BUY pays more)
    delay_sec: float = Field(5.0, ge=0, le=3600)  # we act this long after the leader's trade
    max_days: int = Field(90, ge=1, le=365)  # the longest window a run may ask for
    max_trades: int = Field(20_000, ge=1, le=1_000_000)  # newest trades read at most (older ones are left out)


DemotionFlag = Literal["market_maker", "high_frequency"]


class DemotionSection(Section):
    """Auto-demotion (docs/copytrading.md "Auto-demotion"): rules that pause a followed wallet. Every
    rule is off by default; a paused leader stays paused until ``polyfleet leaders resume``."""

    check_interval_sec: float = Field(300.0, ge=1)  # the orchestrator evaluates the rules this often
    pnl_floor_usd: float | None = None  # copied PnL over the last pnl_last_copies copies below this pauses
    pnl_last_copies: int = Field(20, ge=1)
    max_median_slippage_bps: float | None = Field(None, gt=0)  # median entry slippage above this pauses ...
    slippage_min_copies: int = Field(10, ge=1)  # ... once at least this many copies have an entry price
    flags: tuple[DemotionFlag, ...] = ()  # any of these copyability flags pauses
    # The check reads the newest entries only (a smaller window than the scorecard's: it runs often).
    read_signals: int = Field(5_000, ge=1, le=1_000_000)
    read_fills: int = Field(10_000, ge=1, le=1_000_000)

    @property
    def any_rule(self) -> bool:
        return self.pnl_floor_usd is not None or self.max_median_slippage_bps is not None or bool(self.flags)

    @field_validator("flags")
    @classmethod
    def _distinct_flags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"flags lists a flag twice: {list(value)}")
        return value


class CopytradeSection(Section):
    poll_interval_sec: float = Field(5.0, gt=0)
    initial_lookback_sec: int = Field(0, ge=0)
    rtds_enabled: bool = False
    page_size: int = Field(500, ge=1, le=10000)
    max_concurrent_requests: int = Field(4, ge=1)
    max_requests_per_10s: int = Field(150, ge=1)
    dedup_window_sec: int = Field(3600, ge=60)
    # The Data API indexes trades 1-4 s late and not always in order: a trade of second T can show
    # up after one of T+1 was read. Each poll re-reads this many seconds below its cursor; the
    # seen-set (kept dedup_window_sec) drops what was already emitted.
    poll_overlap_sec: int = Field(30, ge=0)
    rtds_ping_interval_sec: float = Field(5.0, gt=0)
    rtds_silence_sec: float = Field(30.0, gt=0)
    # the chain source: the exchanges' OrderFilled logs over Polygon JSON-RPC (docs/collector.md)
    chain_enabled: bool = False
    chain_rpc_url: str = ""  # "": the environment's rpc_url; ws:// or wss://: eth_subscribe when offered
    chain_poll_interval_sec: float = Field(2.0, gt=0)  # eth_getLogs sweeps (the backstop under a subscription)
    chain_max_block_range: int = Field(1000, ge=1)  # widest eth_getLogs range asked (halved when refused)
    chain_confirmations: int = Field(0, ge=0)  # blocks below the head a log must be; > 0: no subscription
    targets: tuple[Target, ...] = ()
    copy_rules: CopyRules = Field(default_factory=CopyRules, alias="copy")  # every leader's, unless overridden
    bankroll_usd: float = Field(0.0, ge=0)  # ours, for proportional sizing (docs/copytrading.md)
    value_refresh_sec: float = Field(300.0, gt=0)  # leaders' portfolio values and venue stats re-read this often
    # the leader's own PnL and volume on its scorecard: the Data API's window (docs/copytrading.md)
    leader_stats_window: Literal["day", "week", "month", "all"] = "month"
    scorecard: ScorecardSection = ScorecardSection()  # polyfleet leaders, GET /api/leaders
    demotion: DemotionSection = DemotionSection()  # rules that pause a leader
    backtest: BacktestSection = BacktestSection()  # polyfleet leaders backtest, GET /api/leaders/{a}/backtest

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def rules_for(self, account: str) -> CopyRules:
        """The copy rules of one followed wallet: ``copy`` overlaid with its target's ``copy``."""
        low = account.lower()
        over = next((t.copy_rules for t in reversed(self.targets) if t.account.lower() == low), {})
        return CopyRules.model_validate({**self.copy_rules.model_dump(), **over}) if over else self.copy_rules

    @model_validator(mode="after")
    def _copy_rules(self) -> CopytradeSection:
        """Each target's rules are checked here, so a bad one refuses the file naming its key."""
        for i, target in enumerate(self.targets):
            try:
                rules = self.rules_for(target.account)
            except ValidationError as exc:
                errs = "; ".join(f"copytrade.targets.{i}.copy.{'.'.join(str(p) for p in e['loc']) or '(rules)'}: "
                                 f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg'].removeprefix('Value error, ')}"
                                 for e in exc.errors())
                raise ValueError(f"{errs} (target {target.account})") from None
            if rules.sizing == "proportional" and self.bankroll_usd <= 0:
                raise ValueError(f"copytrade.targets.{i} ({target.account}) uses proportional sizing but "
                                 "copytrade.bankroll_usd is not set: proportional needs our portfolio value")
        if self.copy_rules.sizing == "proportional" and self.bankroll_usd <= 0:
            raise ValueError("copytrade.copy.sizing is proportional but copytrade.bankroll_usd is not set: "
                             "proportional needs our portfolio value")
        return self

    @field_validator("chain_rpc_url")
    @classmethod
    def _rpc_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"chain_rpc_url must be an http(s):// or ws(s):// URL, not {value!r}")
        return value

    @model_validator(mode="after")
    def _overlap_inside_dedup(self) -> CopytradeSection:
        if self.poll_overlap_sec >= self.dedup_window_sec:
            raise ValueError(f"poll_overlap_sec ({self.poll_overlap_sec}) must be below dedup_window_sec "
                             f"({self.dedup_window_sec}): re-read trades older than the seen-set would repeat")
        return self


class ScreenSection(Section):
    enabled: bool = False
    min_volume: float = 0.0
    min_liquidity: float = 0.0
    end_within_hours: float = 0.0
    end_after_hours: float = Field(0.0, ge=0)
    min_price: float = 0.0
    max_price: float = 1.0
    keyword_blacklist: tuple[str, ...] = ()
    refresh_sec: float = 300.0
    max_markets: int = Field(2000, ge=1)


class SchedulerSection(Section):
    max_concurrent_jobs: int = Field(50, ge=1)
    max_concurrent_exit_jobs: int = Field(10, ge=1)
    topic_start_cooldown_sec: float = Field(0.0, ge=0)
    poll_interval_sec: float = Field(1.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _requirement_names(cls, data: Any) -> Any:
        return accept_requirement_names(data, "scheduler", {"poll_interval_seconds": "poll_interval_sec"})


class RiskSection(Section):
    blacklist_token_keys: tuple[str, ...] = ()
    max_notional_per_token: float = Field(100.0, gt=0)
    max_notional_total: float = Field(1000.0, gt=0)
    allow_short: bool = False
    max_daily_loss: float = Field(200.0, gt=0)


class CooldownSection(Section):
    cooldown_sec_per_token: float = Field(300.0, ge=0)
    orphan_ignore_sec: float = Field(3600.0, ge=0)
    exit_ignore_cooldown: bool = True


class CountdownSection(Section):
    minutes_before_end: float = 0.0
    absolute_time: str = ""
    timezone: str = "UTC"


class MakerStrategySection(Section):
    """D3-D5. Travels (merged with per-token overrides) inside START commands."""

    drop_window_minutes: float = Field(10.0, gt=0)
    drop_pct: float = Field(0.05, ge=0, lt=1)
    buy_price_threshold: float = Field(0.95, gt=0, le=1)
    profit_pct: float = Field(0.05, ge=0)
    enable_incremental_drop_pct: bool = False
    incremental_drop_pct_step: float = Field(0.01, ge=0)
    incremental_drop_pct_cap: float = Field(0.2, ge=0)
    min_price: float = Field(0.02, ge=0, le=1)
    max_price: float = Field(0.98, ge=0, le=1)
    disable_duplicate_signal: bool = False
    disable_sell_signals: bool = False
    order_size: float = Field(10.0, gt=0)
    order_size_is_target: bool = False
    min_quote_amount: float = Field(1.0, ge=0)
    min_market_order_size: float = Field(0.0, ge=0)
    reject_cooldown_sec: float = Field(5.0, ge=0)  # docs/strategy.md section 8
    countdown: CountdownSection = CountdownSection()


class DeadlinePolicySection(Section):
    enabled: bool = False
    default_deadline_time: str = "23:59"
    timezone: str = "UTC"


class RunParamsSection(Section):
    deadline_policy: DeadlinePolicySection = DeadlinePolicySection()
    deadline_override_ts: int = 0
    disable_deadline_checks: bool = False


class ExecutionSection(Section):
    order_slice_min: float = Field(5.0, gt=0)
    order_slice_max: float = Field(50.0, gt=0)
    order_interval_sec: float = Field(0.5, ge=0)
    retry_attempts: int = Field(3, ge=0)
    price_tolerance_step: float = Field(0.01, ge=0)
    wait_sec: float = Field(5.0, ge=0)
    poll_interval_sec: float = Field(0.5, gt=0)
    sell_mode: Literal["aggressive", "conservative"] = "conservative"
    aggressive_step: float = Field(0.01, ge=0)
    aggressive_timeout: float = Field(30.0, ge=0)
    exit_sell_mode: Literal["aggressive", "conservative"] = "aggressive"
    exit_floor_price: float = Field(0.01, ge=0, le=1)
    # Trades settle after the match (docs/venue.md T1-T2): a SELL of shares bought moments ago waits
    # this long for their trades to settle (a session's close waits as long for its last trades),
    # reading their status every settle_poll_sec meanwhile.
    settle_wait_sec: float = Field(120.0, ge=0)
    settle_poll_sec: float = Field(1.0, gt=0)
    # A session with nothing pending and no order out takes the venue's word for its position this
    # often, booking a difference as a fill (a trade whose fill was lost with a fenced or killed
    # session); 0: only when it liquidates or trims.
    reconcile_sec: float = Field(30.0, ge=0)
    # The weekly restart (425) and the post-only window after it (docs/venue.md O1-O2) are waited
    # out, without counting as a refusal, for at most this long per order.
    venue_window_max_sec: float = Field(300.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _requirement_names(cls, data: Any) -> Any:
        return accept_requirement_names(data, "execution", EXECUTION_REQUIREMENT_NAMES)


class MakerStrategyDefaultsSection(Section):
    default: dict[str, Any] = {}
    topics: dict[str, dict[str, Any]] = {}

    @field_validator("topics", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        """Token ids are long numbers; an unquoted one is still the token id."""
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v


class OrderbookSection(Section):
    refresh_sec: float = Field(2.0, gt=0)
    max_fetch_per_loop: int = Field(10, ge=1)
    cache_max_items: int = Field(1000, ge=1)


class GatewaySection(Section):
    max_tokens_per_connection: int = Field(200, ge=1, le=500)
    ping_interval_sec: float = Field(10.0, gt=0)
    stale_after_sec: float = Field(60.0, gt=0)
    reconcile_interval_sec: float = Field(5.0, gt=0)
    connect_stagger_sec: float = Field(0.25, ge=0)
    reseed_min_interval_sec: float = Field(2.0, ge=0)


class WorkersSection(Section):
    capacity: int = Field(200, ge=1)
    lease_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_sec: float = Field(2.0, gt=0)
    # An order is posted only while the lease surely holds for this long yet (by the worker's own
    # clock): the POST must reach the venue before the orchestrator could move the token. None:
    # min(1000, lease_ms / 4).
    send_margin_ms: int | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "venue_threads" in data:
            raise ValueError("workers.venue_threads was removed: the venue client (polymarket-client) is async, "
                             "so no venue call holds a thread any more; delete the key")
        return data

    @property
    def send_margin(self) -> int:
        return self.send_margin_ms if self.send_margin_ms is not None else min(1000, self.lease_ms // 4)

    @model_validator(mode="after")
    def _margin_inside_lease(self) -> WorkersSection:
        if self.send_margin >= self.lease_ms:
            raise ValueError(f"send_margin_ms ({self.send_margin}) must be below lease_ms ({self.lease_ms}): "
                             "no order could ever be sent")
        return self


class OrderHeartbeatsSection(Section):
    """The venue's order heartbeats, its dead-man switch (docs/venue.md H1): an API key that stops
    sending them for ``venue_timeout_sec`` has every open order cancelled. Each maker_worker with a
    venue account sends one every ``interval_sec`` (retrying every ``retry_sec`` after a failure) and
    places no order once ``fail_closed_margin_sec`` or less remain before the venue's deadline
    counted from its last accepted send (services/maker_worker/heartbeat.py). Not the Redis
    liveness ``heartbeat_interval_sec`` of workers and monitoring."""

    enabled: bool = True  # false: no heartbeats, no dead-man switch, no gate (orders outlive a dead worker)
    interval_sec: float = Field(5.0, gt=0)  # the official clients' cadence
    retry_sec: float = Field(1.0, gt=0)  # after a failed send
    venue_timeout_sec: float = Field(10.0, gt=0)  # the venue's deadline (~10 s, H1)
    fail_closed_margin_sec: float = Field(3.0, gt=0)  # stop placing orders this long before the deadline

    @model_validator(mode="after")
    def _below_the_deadline(self) -> OrderHeartbeatsSection:
        if self.fail_closed_margin_sec >= self.venue_timeout_sec:
            raise ValueError(f"fail_closed_margin_sec ({self.fail_closed_margin_sec:g}) must be below "
                             f"venue_timeout_sec ({self.venue_timeout_sec:g}): no order could ever be placed")
        window = self.venue_timeout_sec - self.fail_closed_margin_sec
        if self.interval_sec >= window:
            raise ValueError(f"interval_sec ({self.interval_sec:g}) must be below venue_timeout_sec - "
                             f"fail_closed_margin_sec ({window:g}): beats on schedule would close the order gate")
        if self.retry_sec > self.interval_sec:
            raise ValueError(f"retry_sec ({self.retry_sec:g}) must not exceed interval_sec ({self.interval_sec:g})")
        return self


class RateBudgetSection(Section):
    """One order and one cancel budget per signer, shared by every process that signs for it through
    Redis (shared/venue/rate_budget.py), fed by the venue's ``Poly-RateLimit-*`` headers and 429s
    (docs/venue.md R2). A send waits while the budget is spent, at most ``max_wait_sec``; then it is
    not sent (a transient refusal, retried like a 429)."""

    shared: bool = True  # false: each process keeps its own view (the venue's 429s still hold it back)
    max_wait_sec: float = Field(10.0, ge=0)


ArbKind = Literal["buy_both", "split_sell", "negrisk_buy_all", "negrisk_sell_all"]
ARB_KINDS: tuple[ArbKind, ...] = ("buy_both", "split_sell", "negrisk_buy_all", "negrisk_sell_all")


class ArbChainSection(Section):
    """Split/merge/convert/redeem of the arbitrage (docs/arbitrage.md "Positions"). The calls go
    through the venue room's SDK client for the trading wallet: by JSON-RPC (the environment's
    ``rpc_url``, or ``PF_POLYGON_RPC_URL``) for an EOA, through the relayer for the others."""

    # at start: send the approvals the contracts in use lack (else execution stays off, naming the fix)
    approve: bool = True
    # a call with no outcome (relayer state / receipt) by then is unknown: execution halts
    receipt_timeout_sec: float = Field(60.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _moved_addresses(cls, data: Any) -> Any:
        moved = ("collateral", "ctf_collateral_adapter", "neg_risk_collateral_adapter", "neg_risk_adapter",
                 "conditional_tokens")
        if isinstance(data, dict) and any(k in data for k in moved):
            keys = ", ".join(f"arbitrage.chain.{k}" for k in moved if k in data)
            raise ValueError(f"{keys} removed: contract addresses come from the venue environment "
                             "(docs/venue.md \"Environments\"); delete the key(s)")
        sdk = ("ctf", "neg_risk_split_via", "gas_limit_cap", "max_fee_gwei_cap", "min_priority_fee_gwei",
               "receipt_poll_sec")
        if isinstance(data, dict) and any(k in data for k in sdk):
            keys = ", ".join(f"arbitrage.chain.{k}" for k in sdk if k in data)
            raise ValueError(f"{keys} removed: split, merge, convert and redeem go through the official SDK in "
                             "every mode (EOA by JSON-RPC, other wallets through the relayer; docs/arbitrage.md "
                             "\"Positions\"); delete the key(s)")
        return data


class ArbitrageSection(Section):
    """E1-E4 (docs/arbitrage.md)."""

    enabled: bool = False
    min_edge: float = Field(0.01, ge=0)
    execute: bool = False
    haircut: float = Field(0.2, ge=0, lt=1)
    near_miss_band: float = Field(0.005, ge=0)
    min_notional: float = Field(1.0, ge=0)
    kinds: tuple[ArbKind, ...] = ARB_KINDS
    catalogue_refresh_sec: float = Field(300.0, gt=0)
    catalogue_max_events: int = Field(20_000, ge=1)
    min_liquidity: float = Field(0.0, ge=0)
    depth_min_interval_sec: float = Field(0.5, ge=0)
    rescan_interval_sec: float = Field(2.0, gt=0)
    material_edge_change: float = Field(0.002, ge=0)
    material_size_change: float = Field(0.2, ge=0)
    order_type: Literal["FOK", "FAK"] = "FOK"
    unwind_slippage: float = Field(0.05, ge=0, lt=1)
    max_notional_per_market: float = Field(100.0, gt=0)
    max_notional_total: float = Field(500.0, gt=0)
    max_trades_per_minute: int = Field(6, ge=0)
    max_daily_loss: float = Field(50.0, gt=0)
    min_seconds_to_end: float = Field(600.0, ge=0)
    hold_to_resolution: bool = False
    resolution_check_sec: float = Field(60.0, gt=0)  # held sets: CLOB /markets/{condition_id} re-read
    # the legs' trades settle late (docs/venue.md T1-T3): how long the executor waits for them, how
    # often it reads their status, and how long a merge refused for shares not there yet is retried
    settle_wait_sec: float = Field(120.0, ge=0)
    settle_poll_sec: float = Field(1.0, gt=0)
    merge_retry_sec: float = Field(60.0, ge=0)
    chain: ArbChainSection = ArbChainSection()


class RedeemerSection(Section):
    """services/redeemer: positions in resolved markets (``pf:redeemable``) redeemed on the venue
    (docs/orchestrator.md "Resolved markets")."""

    enabled: bool = True
    check_interval_sec: float = Field(5.0, gt=0)  # pf:redeemable re-read this often
    # a token with trades still pending is redeemed once they settled, or this long after the resolution
    settle_wait_sec: float = Field(600.0, ge=0)
    retry_initial_sec: float = Field(5.0, gt=0)  # a failed or unknown redeem is retried after this, doubling ...
    retry_max_sec: float = Field(300.0, gt=0)  # ... up to this
    receipt_timeout_sec: float = Field(60.0, gt=0)  # a redeem with no outcome by then is unknown (and retried)


class ApiSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(8800, ge=1, le=65535)
    control_wait_sec: float = Field(5.0, ge=0, le=60)  # how long a control call waits for the orchestrator
    ws_poll_ms: int = Field(500, ge=10, le=10_000)  # websocket: XREAD block time per round
    max_ws_clients: int = Field(50, ge=1)


class RetryStrategySection(Section):
    max_attempts: int = Field(5, ge=1)
    initial_backoff_sec: float = Field(0.5, ge=0)
    backoff_multiplier: float = Field(2.0, ge=1)
    max_backoff_sec: float = Field(30.0, ge=0)
    jitter_fraction: float = Field(0.2, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        return refuse_renamed(data, "retry_strategy", {"initial_backoff_seconds": "initial_backoff_sec",
                                                       "max_backoff_seconds": "max_backoff_sec"})


class MonitoringSection(Section):
    heartbeat_interval_sec: float = Field(5.0, gt=0)
    metrics_enabled: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port_base: int = Field(9100, ge=1, le=65000)


class AlertsSection(Section):
    """F9: the alerter service. The webhook URL is a secret (PF_ALERT_WEBHOOK_URL): a Telegram
    URL carries the bot token."""

    enabled: bool = False
    format: Literal["generic", "telegram"] = "generic"
    telegram_chat_id: str = ""
    dedup_sec: float = Field(300.0, ge=0)  # the same alert again within this long is dropped
    max_per_minute: int = Field(10, ge=1)  # all alerts together, beyond which they are dropped (and counted)
    rejections_per_minute: int = Field(20, ge=1)  # token.rejected events per minute that raise an alert
    gateway_stall_sec: float = Field(30.0, gt=0)  # wanted tokens but no gateway heartbeat for this long
    gateway_silent_sec: float = Field(300.0, gt=0)  # gateway alive, tokens wanted, yet no market frame for this long
    check_interval_sec: float = Field(5.0, gt=0)
    send_timeout_sec: float = Field(5.0, gt=0)


class LoggingSection(Section):
    level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    dir: str = ""
    json_output: bool = Field(False, alias="json")
    retention_days: int = Field(7, ge=1)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SimWallet(Section):
    """A scripted wallet of the sim (services/sim_exchange/wallets.py): ``trader`` (one way, holds a
    while), ``market_maker`` (both sides of one market within minutes) or ``high_frequency`` (small
    clips, many an hour), so the scorecard's copyability flags have something to find."""

    account: str
    style: Literal["trader", "market_maker", "high_frequency"] = "trader"
    trades_per_minute: float = Field(2.0, ge=0)
    # trader and high_frequency sell a holding no sooner than this (by the wallet's own clock): longer
    # than copytrade.scorecard.mm_window_min, or selling it would count as trading both sides
    min_hold_sec: float = Field(900.0, ge=0)


class SimExchangeSection(Section):
    """The local Polymarket (sim mode). It serves its own venue environment at /_sim/environment."""

    host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65535)
    chain_id: int = Field(137, ge=1)
    seed: int = 7
    markets: int = Field(6, ge=1)
    tick_interval_ms: int = Field(1000, ge=10)
    volatility: float = Field(0.01, ge=0)
    starting_cash: float = Field(10_000.0, ge=0)
    wallets: tuple[SimWallet, ...] = ()
    ws_rate_per_sec: float = Field(0.0, ge=0)
    ws_price_change_form: Literal["current", "legacy", "mixed"] = "current"
    ws_batch: int = Field(1, ge=1)
    ws_garbage_every: int = Field(0, ge=0)
    # false: socket `book` events carry no tick_size, as in the venue's documented example (venue.md M2)
    ws_book_tick_size: bool = True
    # arbitrage fixtures (docs/sim-exchange.md "Neg-risk events, fees, drift, split/merge")
    negrisk_events: int = Field(0, ge=0)
    negrisk_outcomes: int = Field(3, ge=2, le=26)
    fee_rate: float = Field(0.0, ge=0, le=1)
    fee_exponent: float = Field(1.0, gt=0)
    arb_drift: float = Field(0.0, ge=0)
    arb_drift_max: float = Field(0.05, ge=0, le=0.5)
    # the strict venue (docs/sim-exchange.md "A venue as strict as the real one")
    settle_lag_ms: int = Field(3000, ge=0)  # MATCHED -> MINED at half of it, CONFIRMED (or FAILED) at all of it
    settle_fail_share: float = Field(0.0, ge=0, le=1)  # trades that go RETRYING -> FAILED (seeded)
    heartbeat_timeout_ms: int = Field(10_000, gt=0)  # open orders cancelled this long after the last heartbeat
    fine_tick_share: float = Field(0.5, ge=0, le=1)  # binary markets (after the first) on tick 0.001
    large_min_share: float = Field(0.5, ge=0, le=1)  # binary markets (after the first) with orderMinSize 15
    delayed_share: float = Field(0.0, ge=0, le=1)  # binary markets (after the first) that delay marketable orders
    delay_ms: int = Field(1000, ge=0)  # how long a delayed market holds a marketable order before matching it
    rate_limit: Literal["enforce", "warn", "off"] = "enforce"  # per-signer order/cancel buckets
    rate_limit_tier: str = "standard"
    order_rate_per_sec: float = Field(40.0, gt=0)
    order_burst: float = Field(60.0, gt=0)
    cancel_rate_per_sec: float = Field(80.0, gt=0)
    cancel_burst: float = Field(120.0, gt=0)
    # today's venue (docs/sim-exchange.md "Today's venue: the official SDK against the sim")
    v2_share: float = Field(0.5, ge=0, le=1)  # share of the binary markets that are Protocol V2 ("v2")
    # the sim's own contract addresses (false: production's), so an address typed by hand fails here
    own_addresses: bool = True
    # EOA makers (signature type 0) still allowed; everyone else must use a deposit wallet (venue.md W3)
    legacy_eoa_makers: tuple[str, ...] = Field(default_factory=lambda: (SIM_ADDRESS,))
    legacy_gamma_lists: bool = False  # keep serving the sunset Gamma /markets and /events lists (G1)
    relayer_step_ms: int = Field(100, ge=0)  # a relayer transaction moves NEW -> EXECUTED -> MINED -> CONFIRMED
    # the JSON-RPC node's eth_getLogs limits (docs/venue.md K4): widest block range, most logs per answer
    rpc_max_log_blocks: int = Field(1000, ge=1)
    rpc_max_logs: int = Field(10_000, ge=1)

    @field_validator("legacy_eoa_makers")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in value if not re.fullmatch(r"0x[0-9a-fA-F]{40}", a)]
        if bad:
            raise ValueError(f"not 0x-prefixed addresses: {', '.join(bad)}")
        return value


class Settings(Section):
    mode: Literal["sim", "paper", "live"] = "sim"
    live_confirmed: bool = False
    polymarket: PolymarketSection = PolymarketSection()
    copytrade: CopytradeSection = CopytradeSection()
    screen: ScreenSection = ScreenSection()
    scheduler: SchedulerSection = SchedulerSection()
    risk: RiskSection = RiskSection()
    cooldown: CooldownSection = CooldownSection()
    maker_strategy: MakerStrategySection = MakerStrategySection()
    maker_strategy_defaults: MakerStrategyDefaultsSection = MakerStrategyDefaultsSection()
    run_params: RunParamsSection = RunParamsSection()
    execution: ExecutionSection = ExecutionSection()
    orderbook: OrderbookSection = OrderbookSection()
    gateway: GatewaySection = GatewaySection()
    workers: WorkersSection = WorkersSection()
    order_heartbeats: OrderHeartbeatsSection = OrderHeartbeatsSection()
    rate_budget: RateBudgetSection = RateBudgetSection()
    arbitrage: ArbitrageSection = ArbitrageSection()
    redeemer: RedeemerSection = RedeemerSection()
    api: ApiSection = ApiSection()
    retry_strategy: RetryStrategySection = RetryStrategySection()
    monitoring: MonitoringSection = MonitoringSection()
    logging: LoggingSection = LoggingSection()
    alerts: AlertsSection = AlertsSection()
    sim_exchange: SimExchangeSection = SimExchangeSection()
    config_reload_sec: float = Field(600.0, gt=0)

    @model_validator(mode="after")
    def _live_needs_confirmation(self) -> Settings:
        if self.mode == "live" and not self.live_confirmed:
            raise ValueError(
                "mode is live but live_confirmed is not true: live mode sends real orders; "
                "set live_confirmed: true (or PF__LIVE_CONFIRMED=true) to confirm"
            )
        return self


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """PF__A__B=v -> {"a": {"b": v}}, with v parsed as a YAML scalar or flow collection."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not path:
            continue
        try:
            value = yaml_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"invalid configuration (environment): {name} conflicts with another override")
            node = nxt
        node[path[-1]] = value
    return tree


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``: nested mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("PF_CONFIG", DEFAULT_CONFIG_PATH))


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = yaml_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid configuration ({path}): not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration ({path}): the top level must be a mapping")
    return data


def load_settings(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the YAML file (if any), apply ``PF__`` env overrides, validate. Raises ConfigError."""
    env = dict(os.environ if environ is None else environ)
    file_path = Path(path) if path is not None else config_path(env)
    data = deep_merge(read_yaml(file_path), _env_overrides(env))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(file_path))) from exc


def merge_strategy_params(settings: Settings, token_id: str, slug: str = "") -> dict[str, Any]:
    """C8: defaults (maker_strategy, run_params, execution) merged with per-token overrides.

    Overrides come from ``maker_strategy_defaults.default`` then ``topics[slug]`` then
    ``topics[token_id]`` (most specific wins); each may hold strategy keys at the top level or
    ``run_params`` / ``execution`` sub-maps. The result is validated, so a bad override fails here,
    naming its key, instead of inside a worker.
    """
    strategy = settings.maker_strategy.model_dump()
    run_params = settings.run_params.model_dump()
    execution = settings.execution.model_dump()
    layers = [settings.maker_strategy_defaults.default]
    if slug and slug in settings.maker_strategy_defaults.topics:
        layers.append(settings.maker_strategy_defaults.topics[slug])
    if token_id in settings.maker_strategy_defaults.topics:
        layers.append(settings.maker_strategy_defaults.topics[token_id])
    for layer in layers:
        over = dict(layer)
        run_params = deep_merge(run_params, over.pop("run_params", {}) or {})
        execution = deep_merge(execution, accept_requirement_names(
            over.pop("execution", {}) or {}, "execution", EXECUTION_REQUIREMENT_NAMES))
        strategy = deep_merge(strategy, over)
    try:
        merged = {
            "maker_strategy": MakerStrategySection.model_validate(strategy).model_dump(),
            "run_params": RunParamsSection.model_validate(run_params).model_dump(),
            "execution": ExecutionSection.model_validate(execution).model_dump(),
        }
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, f"maker_strategy_defaults for {slug or token_id}")) from exc
    return merged


class Secrets(BaseModel):
    """Secrets come only from the environment or from ``<NAME>_FILE`` secret files."""

    model_config = ConfigDict(frozen=True)

    private_key: str = ""
    clob_api_key: str = ""
    clob_api_secret: str = ""
    clob_api_passphrase: str = ""
    api_token: str = ""
    alert_webhook_url: str = ""
    polygon_rpc_url: str = ""  # replaces the environment's rpc_url (providers put their key in it)
    # relayer access (wallet creation, gasless calls): a builder API key, or a relayer API key
    builder_api_key: str = ""
    builder_api_secret: str = ""
    builder_api_passphrase: str = ""
    relayer_api_key: str = ""
    relayer_api_key_address: str = ""

    def __repr__(self) -> str:  # never print secrets, even by accident
        present = [name for name, value in self if value]
        return f"Secrets(present={present})"

    __str__ = __repr__


def _secret(env: dict[str, str], name: str) -> str:
    if env.get(name):
        return env[name].strip()
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"secret {name}: cannot read {name}_FILE={file_name}: {exc}") from exc
    return ""


def load_secrets(environ: dict[str, str] | None = None) -> Secrets:
    env = dict(os.environ if environ is None else environ)
    return Secrets(
        private_key=_secret(env, "PF_PRIVATE_KEY"),
        clob_api_key=_secret(env, "PF_CLOB_API_KEY"),
        clob_api_secret=_secret(env, "PF_CLOB_API_SECRET"),
        clob_api_passphrase=_secret(env, "PF_CLOB_API_PASSPHRASE"),
        api_token=_secret(env, "PF_API_TOKEN"),
        alert_webhook_url=_secret(env, "PF_ALERT_WEBHOOK_URL"),
        polygon_rpc_url=_secret(env, "PF_POLYGON_RPC_URL"),
        builder_api_key=_secret(env, "PF_BUILDER_API_KEY"),
        builder_api_secret=_secret(env, "PF_BUILDER_API_SECRET"),
        builder_api_passphrase=_secret(env, "PF_BUILDER_API_PASSPHRASE"),
        relayer_api_key=_secret(env, "PF_RELAYER_API_KEY"),
        relayer_api_key_address=_secret(env, "PF_RELAYER_API_KEY_ADDRESS"),
    )


def redis_url(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("PF_REDIS_URL", "redis://127.0.0.1:6379/0")
