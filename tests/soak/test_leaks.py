"""The secret search of the soak (tests/soak/leaks.py) on hand-made texts."""

from __future__ import annotations

from harness.soak.leaks import SoakSecrets, find_leaks, needles

VALUES = {"api_token": "pf-soak-token-AAAABBBBCCCCDDDDEEEEFFFF", "redis_password": "short-pw-1"}


def test_a_whole_value_and_its_head_or_tail_are_found_and_named() -> None:
    sources = [("clean", "nothing to see"), ("whole", "token=pf-soak-token-AAAABBBBCCCCDDDDEEEEFFFF;"),
               ("head", "Bearer pf-soak-toke..."), ("tail", "...DDDDEEEEFFFF"), ("pw", "redis://:short-pw-1@h")]
    hits = find_leaks(sources, VALUES)
    assert {(h["where"], h["secret"]) for h in hits} >= {("whole", "api_token"), ("head", "api_token[:12]"),
                                                          ("tail", "api_token[-12:]"), ("pw", "redis_password")}
    assert not [h for h in hits if h["where"] == "clean"]
    assert all("<SECRET>" in h["context"] and "short-pw-1" not in h["context"] for h in hits)


def test_short_values_are_searched_whole_only() -> None:
    assert needles({"p": "short-pw-1"}) == {"short-pw-1": "p"}


def test_fresh_secrets_differ_and_name_every_value() -> None:
    a, b = SoakSecrets(), SoakSecrets()
    assert a.values().keys() >= {"private_key", "api_token", "redis_password", "webhook_token"}
    assert not set(a.values().values()) & set(b.values().values())
    assert len(a.private_key) == 66
    assert int(a.private_key, 16) > 0
