"""Configuration: YAML file + PF__ env overrides, errors that name the key, secrets kept out."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.config import (
    ConfigError,
    Secrets,
    Settings,
    config_path,
    load_secrets,
    load_settings,
    merge_strategy_params,
    redis_url,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "polyfleet.example.yaml"
ADDR = "0x56687bf447db6ffa42ffe2204a05edaa20f55839"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "polyfleet.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str = "", env: dict[str, str] | None = None) -> Settings:
    return load_settings(write(tmp_path, text), env or {})


# ------------------------------------------------------------------------------------ loading


def test_a_missing_file_means_all_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "nope.yaml", {})
    assert s == Settings()
    assert s.mode == "sim"
    assert s.copytrade.targets == ()


def test_yaml_values_are_read(tmp_path: Path) -> None:
    s = load(tmp_path, f"""
        mode: paper
        copytrade:
          poll_interval_sec: 2.5
          targets:
            - account: "{ADDR}"
              min_size: 5
            - {{account: "{ADDR.replace('5', '6')}", enabled: false}}
        scheduler: {{max_concurrent_jobs: 7}}
        risk:
          blacklist_token_keys: [election, "123"]
        maker_strategy:
          countdown: {{minutes_before_end: 30}}
        logging: {{level: DEBUG, json: true}}
    """)
    assert s.mode == "paper"
    assert s.copytrade.poll_interval_sec == 2.5
    assert [t.account for t in s.copytrade.targets] == [ADDR, ADDR.replace("5", "6")]
    assert s.copytrade.targets[0].min_size == 5.0
    assert s.copytrade.targets[1].enabled is False
    assert s.scheduler.max_concurrent_jobs == 7
    assert s.risk.blacklist_token_keys == ("election", "123")
    assert s.maker_strategy.countdown.minutes_before_end == 30
    assert s.logging.level == "DEBUG"
    assert s.logging.json_output is True
    # untouched sections keep their defaults
    assert s.gateway == Settings().gateway


def test_empty_file_means_all_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "# nothing but a comment\n") == Settings()


def test_pf_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "mode: paper\n")
    assert config_path({"PF_CONFIG": str(path)}) == path
    assert config_path({}) == Path("config/polyfleet.yaml")
    assert load_settings(None, {"PF_CONFIG": str(path)}).mode == "paper"


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load(tmp_path)
    with pytest.raises(ValueError):
        s.mode = "live"  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.risk.max_notional_total = 1.0  # type: ignore[misc]


def test_redis_url_comes_from_pf_redis_url() -> None:
    assert redis_url({}) == "redis://127.0.0.1:6379/0"
    assert redis_url({"PF_REDIS_URL": "redis://h:1/2"}) == "redis://h:1/2"


# ------------------------------------------------------------------------------ env overrides


def test_env_overrides_a_file_value(tmp_path: Path) -> None:
    s = load(tmp_path, "scheduler: {max_concurrent_jobs: 7}\n", {"PF__SCHEDULER__MAX_CONCURRENT_JOBS": "4"})
    assert s.scheduler.max_concurrent_jobs == 4


def test_env_overrides_nest_with_double_underscores(tmp_path: Path) -> None:
    s = load(tmp_path, "maker_strategy: {drop_pct: 0.1}\n", {
        "PF__MAKER_STRATEGY__COUNTDOWN__TIMEZONE": "Asia/Shanghai",
        "PF__RUN_PARAMS__DEADLINE_POLICY__ENABLED": "true",
        "PF__MODE": "paper",
        "PF__POLYMARKET__SIM_URL": "http://sim_exchange:8700",
        "PF__SIM_EXCHANGE__HOST": "0.0.0.0",
        "PF__LOGGING__JSON": "true",
    })
    assert s.maker_strategy.countdown.timezone == "Asia/Shanghai"
    assert s.maker_strategy.drop_pct == 0.1  # the file's sibling value survives
    assert s.run_params.deadline_policy.enabled is True
    assert s.mode == "paper"
    assert s.polymarket.sim_url == "http://sim_exchange:8700"
    assert s.sim_exchange.host == "0.0.0.0"
    assert s.logging.json_output is True


def test_env_override_lists_and_mappings(tmp_path: Path) -> None:
    s = load(tmp_path, "", {
        "PF__RISK__BLACKLIST_TOKEN_KEYS": "[election, sports]",
        "PF__COPYTRADE__TARGETS": f'[{{account: "{ADDR}", min_size: 3}}]',
        "PF__MAKER_STRATEGY_DEFAULTS__DEFAULT": "{drop_pct: 0.2}",
    })
    assert s.risk.blacklist_token_keys == ("election", "sports")
    assert s.copytrade.targets[0].account == ADDR
    assert s.copytrade.targets[0].min_size == 3
    assert s.maker_strategy_defaults.default == {"drop_pct": 0.2}


def test_env_override_values_are_typed(tmp_path: Path) -> None:
    s = load(tmp_path, "", {"PF__API__PORT": "9000", "PF__RISK__ALLOW_SHORT": "yes",
                            "PF__WORKERS__LEASE_MS": "3000", "PF__COOLDOWN__COOLDOWN_SEC_PER_TOKEN": "1.5"})
    assert s.api.port == 9000
    assert s.risk.allow_short is True
    assert s.workers.lease_ms == 3000
    assert s.cooldown.cooldown_sec_per_token == 1.5


def test_other_env_variables_are_ignored(tmp_path: Path) -> None:
    s = load(tmp_path, "", {"PF_REDIS_URL": "redis://x", "PF_NAMESPACE": "t", "PF_PRIVATE_KEY": "0x1",
                            "HOME": "/root", "PF__": "x"})
    assert s == Settings()


def test_an_env_override_of_an_unknown_key_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_notional_totl: unknown key"):
        load(tmp_path, "", {"PF__RISK__MAX_NOTIONAL_TOTL": "5"})


# ------------------------------------------------------------------------------------- errors


def test_unknown_key_error_names_the_dotted_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, f"""
            risk:
              max_notional_totl: 5
            copytrade:
              targets:
                - {{account: "{ADDR}", min_sise: 1}}
            no_such_section: {{}}
        """)
    text = str(err.value)
    assert "risk.max_notional_totl: unknown key" in text
    assert "copytrade.targets.0.min_sise: unknown key" in text
    assert "no_such_section: unknown key" in text
    assert str(tmp_path / "polyfleet.yaml") in text


@pytest.mark.parametrize(("text", "key"), [
    ("risk: {max_notional_total: -1}\n", "risk.max_notional_total"),
    ("scheduler: {max_concurrent_jobs: lots}\n", "scheduler.max_concurrent_jobs"),
    ("mode: turbo\n", "mode"),
    ("gateway: {max_tokens_per_connection: 501}\n", "gateway.max_tokens_per_connection"),
    ("execution: {sell_mode: yolo}\n", "execution.sell_mode"),
    ("copytrade: {targets: [{account: not-an-address}]}\n", "copytrade.targets.0"),
    ("maker_strategy: {countdown: {minutes_before_end: soon}}\n", "maker_strategy.countdown.minutes_before_end"),
    ("copytrade: {poll_overlap_sec: 600, dedup_window_sec: 600}\n", "copytrade"),
])
def test_bad_value_error_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load(tmp_path, text)


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "risk: {max_notional_total: -1, max_daily_loss: 0}\n")
    assert "risk.max_notional_total" in str(err.value)
    assert "risk.max_daily_loss" in str(err.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "key: [unclosed\n"])
def test_a_file_that_is_not_a_yaml_mapping_is_a_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="polyfleet.yaml"):
        load(tmp_path, text)


def test_an_unquoted_wallet_address_is_read_as_the_address(tmp_path: Path) -> None:
    # YAML 1.1 reads 0x... as a hexadecimal integer; people write addresses unquoted.
    s = load(tmp_path, f"copytrade:\n  targets:\n    - account: {ADDR}\n")
    assert s.copytrade.targets[0].account == ADDR


def test_an_unquoted_token_id_topic_key_is_read_as_the_token_id(tmp_path: Path) -> None:
    # Token ids are long decimal numbers; YAML reads an unquoted one as an int.
    s = load(tmp_path, f"maker_strategy_defaults:\n  topics:\n    {TOKEN}: {{drop_pct: 0.3}}\n")
    assert merge_strategy_params(s, TOKEN)["maker_strategy"]["drop_pct"] == 0.3


# ------------------------------------------------------------------------------------ live mode


def test_live_mode_is_refused_without_confirmation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="live_confirmed"):
        load(tmp_path, "mode: live\n")
    with pytest.raises(ConfigError, match="live_confirmed"):
        load(tmp_path, "", {"PF__MODE": "live"})


def test_live_mode_starts_when_confirmed(tmp_path: Path) -> None:
    assert load(tmp_path, "mode: live\nlive_confirmed: true\n").mode == "live"
    assert load(tmp_path, "mode: live\n", {"PF__LIVE_CONFIRMED": "true"}).mode == "live"


# -------------------------------------------------------------------------------------- secrets


SECRET = "0xdeadbeefcafe1234567890secretsecret"


def test_secrets_come_from_the_environment() -> None:
    s = load_secrets({"PF_PRIVATE_KEY": SECRET, "PF_CLOB_API_KEY": "k", "PF_CLOB_API_SECRET": "s",
                      "PF_CLOB_API_PASSPHRASE": "p", "PF_API_TOKEN": "t"})
    assert (s.private_key, s.clob_api_key, s.clob_api_secret, s.clob_api_passphrase, s.api_token) == (
        SECRET, "k", "s", "p", "t")


def test_secrets_come_from_secret_files(tmp_path: Path) -> None:
    f = tmp_path / "pk"
    f.write_text(SECRET + "\n")
    assert load_secrets({"PF_PRIVATE_KEY_FILE": str(f)}).private_key == SECRET
    # the variable itself wins over the file
    assert load_secrets({"PF_PRIVATE_KEY": "0xenv", "PF_PRIVATE_KEY_FILE": str(f)}).private_key == "0xenv"


def test_an_unreadable_secret_file_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PF_PRIVATE_KEY_FILE"):
        load_secrets({"PF_PRIVATE_KEY_FILE": str(tmp_path / "missing")})


def test_no_secrets_means_empty_values() -> None:
    assert load_secrets({}) == Secrets()


def test_secrets_are_never_read_from_the_config_file(tmp_path: Path) -> None:
    for name in ("private_key", "clob_api_key", "clob_api_secret", "clob_api_passphrase", "api_token"):
        with pytest.raises(ConfigError, match=f"{name}: unknown key"):
            load(tmp_path, f"{name}: {SECRET}\n")


def key_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the configuration, dotted (``scheduler.poll_interval_sec``)."""
    out = []
    for name, info in model.model_fields.items():
        out.append(prefix + name)
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(key_names(ann, f"{prefix}{name}."))
    return out


def test_no_settings_field_holds_a_secret() -> None:
    suspicious = [n for n in key_names(Settings) if re.search(r"private_key|secret|passphrase|password|api_key|api_token", n)]
    assert suspicious == []


def test_secrets_repr_and_str_hide_the_values() -> None:
    s = load_secrets({"PF_PRIVATE_KEY": SECRET, "PF_API_TOKEN": "tok-987654321"})
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"s": s})):
        assert SECRET not in text
        assert "tok-987654321" not in text
    assert "private_key" in repr(s)  # says which are present, not what they are


# ----------------------------------------------------------------------- merge_strategy_params


def test_merge_without_overrides_is_the_defaults(tmp_path: Path) -> None:
    s = load(tmp_path)
    merged = merge_strategy_params(s, "1")
    assert merged["maker_strategy"] == s.maker_strategy.model_dump()
    assert merged["run_params"] == s.run_params.model_dump()
    assert merged["execution"] == s.execution.model_dump()


MERGE_YAML = f"""
maker_strategy: {{drop_pct: 0.05, profit_pct: 0.05, order_size: 10}}
maker_strategy_defaults:
  default: {{profit_pct: 0.06, execution: {{sell_mode: aggressive}}}}
  topics:
    will-it-rain: {{drop_pct: 0.1, order_size: 20, run_params: {{disable_deadline_checks: true}}}}
    "{TOKEN}": {{drop_pct: 0.2, countdown: {{minutes_before_end: 15}}}}
"""


def test_default_layer_applies_to_every_token(tmp_path: Path) -> None:
    merged = merge_strategy_params(load(tmp_path, MERGE_YAML), "999")
    assert merged["maker_strategy"]["profit_pct"] == 0.06
    assert merged["maker_strategy"]["drop_pct"] == 0.05
    assert merged["execution"]["sell_mode"] == "aggressive"


def test_topic_override_by_slug(tmp_path: Path) -> None:
    merged = merge_strategy_params(load(tmp_path, MERGE_YAML), "999", slug="will-it-rain")
    assert merged["maker_strategy"]["drop_pct"] == 0.1
    assert merged["maker_strategy"]["order_size"] == 20
    assert merged["maker_strategy"]["profit_pct"] == 0.06  # from the default layer
    assert merged["run_params"]["disable_deadline_checks"] is True


def test_topic_override_by_token_id(tmp_path: Path) -> None:
    merged = merge_strategy_params(load(tmp_path, MERGE_YAML), TOKEN)
    assert merged["maker_strategy"]["drop_pct"] == 0.2
    assert merged["maker_strategy"]["countdown"]["minutes_before_end"] == 15
    assert merged["maker_strategy"]["countdown"]["timezone"] == "UTC"  # nested defaults kept


def test_most_specific_override_wins(tmp_path: Path) -> None:
    merged = merge_strategy_params(load(tmp_path, MERGE_YAML), TOKEN, slug="will-it-rain")
    assert merged["maker_strategy"]["drop_pct"] == 0.2  # token id beats slug
    assert merged["maker_strategy"]["order_size"] == 20  # slug beats the defaults
    assert merged["maker_strategy"]["profit_pct"] == 0.06  # default layer beats maker_strategy
    assert merged["run_params"]["disable_deadline_checks"] is True


def test_merge_does_not_touch_the_settings(tmp_path: Path) -> None:
    s = load(tmp_path, MERGE_YAML)
    before = s.model_dump()
    merge_strategy_params(s, TOKEN, slug="will-it-rain")
    assert s.model_dump() == before


@pytest.mark.parametrize(("override", "key"), [
    ("{drop_pct: 2}", "drop_pct"),
    ("{order_size: -1}", "order_size"),
    ("{drop_pctt: 0.1}", "drop_pctt"),
    ("{execution: {sell_mode: yolo}}", "sell_mode"),
    ("{run_params: {deadline_override_ts: soon}}", "deadline_override_ts"),
])
def test_a_bad_override_raises_naming_it(tmp_path: Path, override: str, key: str) -> None:
    s = load(tmp_path, f"maker_strategy_defaults:\n  topics:\n    will-it-rain: {override}\n")
    merge_strategy_params(s, "999")  # other tokens are unaffected
    with pytest.raises(ConfigError, match=key) as err:
        merge_strategy_params(s, "999", slug="will-it-rain")
    assert "will-it-rain" in str(err.value)


# ----------------------------------------------------------------------- the shipped example


def test_the_example_config_exists() -> None:
    assert EXAMPLE.is_file(), f"{EXAMPLE.relative_to(ROOT)} must ship with the repo"


def test_the_example_config_loads_in_sim_mode() -> None:
    s = load_settings(EXAMPLE, {})
    assert s.mode == "sim"
    assert s.live_confirmed is False
    # every per-token override it ships is valid too
    merge_strategy_params(s, "1")
    for topic in s.maker_strategy_defaults.topics:
        merge_strategy_params(s, topic, slug=topic)


def test_the_example_config_documents_every_section_and_key() -> None:
    text = EXAMPLE.read_text()

    def missing(model: type[BaseModel]) -> list[str]:
        out = []
        for name, info in model.model_fields.items():
            spelled = info.alias or name
            if not re.search(rf"(?<![\w.]){re.escape(spelled)}\s*:", text):  # block or flow style
                out.append(spelled)
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out.extend(missing(ann))
        return out

    assert missing(Settings) == []


def test_removed_venue_keys_name_their_replacement(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"polymarket.clob_url was removed: use the environment's clob_url"):
        load(tmp_path, "polymarket: {clob_url: 'http://x'}\n")
    with pytest.raises(ConfigError, match=r"polymarket.signature_type was removed: use polymarket.wallet"):
        load(tmp_path, "polymarket: {signature_type: 3}\n")
    with pytest.raises(ConfigError, match=r"arbitrage.chain.collateral removed: contract addresses come from"):
        load(tmp_path, "arbitrage: {chain: {collateral: '0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB'}}\n")
    with pytest.raises(ConfigError, match=r"arbitrage.chain.ctf, arbitrage.chain.gas_limit_cap removed: split, merge, "
                                          r"convert and redeem go through the official SDK"):
        load(tmp_path, "arbitrage: {chain: {ctf: rpc, gas_limit_cap: 1000000}}\n")
    with pytest.raises(ConfigError, match=r"url_overrides: unknown URL field\(s\) clob"):
        load(tmp_path, "polymarket: {url_overrides: {clob: 'http://x'}}\n")


def test_removed_worker_thread_pool_key_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"workers.venue_threads was removed: the venue client .* is async"):
        load(tmp_path, "workers: {venue_threads: 32}\n")


@pytest.mark.parametrize(("text", "section", "field"), [
    ("scheduler: {poll_interval_seconds: 7}\n", "scheduler", "poll_interval_sec"),
    ("execution: {order_interval_seconds: 7}\n", "execution", "order_interval_sec"),
    ("execution: {wait_seconds: 7}\n", "execution", "wait_sec"),
    ("execution: {poll_interval_seconds: 7}\n", "execution", "poll_interval_sec"),
])
def test_the_requirements_seconds_keys_still_load(tmp_path: Path, text: str, section: str, field: str) -> None:
    """docs/requirements.md (C4, D3) names these keys: users come with configs that use them."""
    assert getattr(getattr(load(tmp_path, text), section), field) == 7.0


def test_both_spellings_of_one_setting_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"execution.wait_seconds and execution.wait_sec are the same setting"):
        load(tmp_path, "execution: {wait_seconds: 1, wait_sec: 2}\n")


@pytest.mark.parametrize(("text", "old", "new"), [
    ("retry_strategy: {initial_backoff_seconds: 1}\n", "retry_strategy.initial_backoff_seconds",
     "retry_strategy.initial_backoff_sec"),
    ("retry_strategy: {max_backoff_seconds: 1}\n", "retry_strategy.max_backoff_seconds", "retry_strategy.max_backoff_sec"),
])
def test_renamed_duration_keys_name_their_replacement(tmp_path: Path, text: str, old: str, new: str) -> None:
    with pytest.raises(ConfigError, match=rf"{old} was renamed {new} \(every duration in seconds ends in _sec\)"):
        load(tmp_path, text)


def test_renamed_keys_fail_from_the_environment_and_per_token_overrides_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"retry_strategy.max_backoff_seconds was renamed retry_strategy.max_backoff_sec"):
        load(tmp_path, "", {"PF__RETRY_STRATEGY__MAX_BACKOFF_SECONDS": "2"})
    assert load(tmp_path, "", {"PF__SCHEDULER__POLL_INTERVAL_SECONDS": "2"}).scheduler.poll_interval_sec == 2.0
    s = load(tmp_path, "maker_strategy_defaults: {topics: {tok: {execution: {wait_seconds: 9}}}}\n")
    assert merge_strategy_params(s, "tok")["execution"]["wait_sec"] == 9.0
    assert merge_strategy_params(s, "other")["execution"]["wait_sec"] == 5.0


def test_every_duration_in_seconds_is_named_sec() -> None:
    """One unit suffix for seconds: a new ``*_seconds`` key would bring the mix back."""
    keys = key_names(Settings)
    assert {"scheduler.poll_interval_sec", "execution.wait_sec"} <= set(keys)
    assert [k for k in keys if k.endswith("_seconds")] == []


def test_relayer_secrets_come_from_the_environment() -> None:
    s = load_secrets({"PF_BUILDER_API_KEY": "k", "PF_BUILDER_API_SECRET": "c2VjcmV0", "PF_BUILDER_API_PASSPHRASE": "p",
                      "PF_RELAYER_API_KEY": "r", "PF_RELAYER_API_KEY_ADDRESS": "0x" + "11" * 20})
    assert (s.builder_api_key, s.builder_api_secret, s.builder_api_passphrase) == ("k", "c2VjcmV0", "p")
    assert (s.relayer_api_key, s.relayer_api_key_address) == ("r", "0x" + "11" * 20)
    assert "c2VjcmV0" not in repr(s)
