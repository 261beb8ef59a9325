"""The key builder: one namespace applied everywhere, bad inputs refused."""

from __future__ import annotations

import inspect
import re

import pytest

from shared.keys import KEY_SPECS, TOKEN_STATES, Keys, keys_from_env

# Every Keys method that builds one key, with sample arguments.
ARGS = {"worker_id": "w1", "token_id": "123", "requester": "orchestrator", "state": "running",
        "account": "0xAbC", "service": "orchestrator", "instance": "host-1", "kind": "signals",
        "signer": "0xabc", "bucket": "orders"}


def _builders(keys: Keys) -> dict[str, str]:
    out = {}
    for name, method in inspect.getmembers(keys, inspect.ismethod):
        if name.startswith("_") or name.endswith("_pattern"):
            continue
        params = list(inspect.signature(method).parameters)
        out[name] = method(*(ARGS[p] for p in params))
    return out


def test_every_key_carries_the_namespace() -> None:
    built = _builders(Keys("pf"))
    assert built, "no key builders found"
    assert all(k.startswith("pf:") for k in built.values()), built
    other = _builders(Keys("staging"))
    assert all(k.startswith("staging:") for k in other.values()), other
    assert {k.removeprefix("pf:") for k in built.values()} == {k.removeprefix("staging:") for k in other.values()}


def test_keys_follow_the_documented_patterns() -> None:
    keys = Keys("pf")
    assert keys.signals() == "pf:signals"
    assert keys.cmd("w1") == "pf:cmd:w1"
    assert keys.tick("123") == "pf:tick:123"
    assert keys.book("123") == "pf:book:123"
    assert keys.gw_want("orchestrator") == "pf:gw:want:orchestrator"
    assert keys.token("123") == "pf:token:123"
    assert keys.tokens_in_state("running") == "pf:tokens:running"
    assert keys.worker_lease("w1") == "pf:worker:w1:lease"
    assert keys.health("orchestrator", "h-1") == "pf:health:orchestrator:h-1"
    assert keys.halt() == "pf:halt"


def test_every_built_key_matches_a_spec() -> None:
    patterns = [re.compile("^pf:" + re.sub(r"\\\{[a-z_]+\\\}", "[^:]+", re.escape(s.pattern)) + "$")
                for s in KEY_SPECS]
    for name, key in _builders(Keys("pf")).items():
        assert any(p.match(key) for p in patterns), f"{name}() -> {key} has no KEY_SPECS row"


def test_patterns_match_what_they_scan() -> None:
    keys = Keys("pf")
    assert keys.gw_want_pattern() == "pf:gw:want:*"
    assert keys.health_pattern("maker_worker") == "pf:health:maker_worker:*"
    assert keys.health_pattern() == "pf:health:*:*"


def test_cursor_key_is_case_insensitive_in_the_account() -> None:
    keys = Keys("pf")
    assert keys.cursor("0xAbCdEf") == keys.cursor("0xabcdef") == "pf:cursor:0xabcdef"


@pytest.mark.parametrize("namespace", ["", "pf:x", ":", "a:b"])
def test_bad_namespace_is_rejected(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        Keys(namespace)


@pytest.mark.parametrize("state", ["", "Running", "paused", "running "])
def test_unknown_token_state_is_rejected(state: str) -> None:
    with pytest.raises(ValueError, match="state"):
        Keys("pf").tokens_in_state(state)


def test_every_token_state_has_an_index_key() -> None:
    keys = Keys("pf")
    assert len({keys.tokens_in_state(s) for s in TOKEN_STATES}) == len(TOKEN_STATES)


def test_namespace_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PF_NAMESPACE", raising=False)
    assert keys_from_env().signals() == "pf:signals"
    monkeypatch.setenv("PF_NAMESPACE", "test1")
    assert keys_from_env().signals() == "test1:signals"


def test_key_specs_are_unique_and_complete() -> None:
    patterns = [s.pattern for s in KEY_SPECS]
    assert len(patterns) == len(set(patterns))
    for spec in KEY_SPECS:
        assert spec.kind in {"stream", "channel", "hash", "set", "zset", "string"}, spec
        assert spec.writers, spec
        assert spec.readers, spec
        assert spec.meaning, spec
        assert not spec.pattern.startswith("pf:"), spec
