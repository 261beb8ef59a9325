"""docker-compose.yml (and docker-compose.live.yml): validated by the compose CLI itself
(``docker compose config`` or docker-compose 1.29's, no engine needed; `make test`
installs docker-compose) and checked structurally: every service, one image, health-gated start, nothing
exposed beyond loopback, live secrets required."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("sim_exchange", "signal_collector", "ws_gateway", "orchestrator", "maker_worker", "api", "alerter",
                "redeemer")
LIVE = ROOT / "docker-compose.live.yml"
LIVE_SECRETS = ("PF_LIVE_CONFIRMED", "PF_PRIVATE_KEY", "PF_CLOB_API_KEY", "PF_CLOB_API_SECRET", "PF_CLOB_API_PASSPHRASE",
                "PF_API_TOKEN")
SIM_URLS = {"PF__POLYMARKET__SIM_URL": "http://sim_exchange:8700"}  # the rest comes from /_sim/environment


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # resolves the x-service anchors and merge keys
    assert isinstance(data, dict)
    return data


def _default(value: str) -> str:
    """``${VAR:-default}`` -> default (what compose substitutes when VAR is unset)."""
    if value.startswith("${") and ":-" in value and value.endswith("}"):
        return value[value.index(":-") + 2:-1]
    return value


def _cmd(value: Any) -> list[str]:
    return value if isinstance(value, list) else str(value).split()


def test_every_service_is_defined(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"redis", *APP_SERVICES}


def test_redis_keeps_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert str(redis["image"]).startswith("redis:7")
    assert "--appendonly" in _cmd(redis["command"])
    assert "yes" in _cmd(redis["command"])
    volume = redis["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "ping" in _cmd(redis["healthcheck"]["test"])
    assert "ports" not in redis


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_runs_its_module_from_the_one_image(compose: dict[str, Any], name: str) -> None:
    svc = compose["services"][name]
    assert svc["build"]["dockerfile"] == "Dockerfile"
    assert svc["image"] == compose["services"]["orchestrator"]["image"]
    assert _cmd(svc["command"]) == ["python", "-m", f"services.{name}"]
    assert svc["restart"] == "unless-stopped"
    assert svc["logging"]["options"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_has_a_healthcheck_and_waits_for_a_healthy_redis(compose: dict[str, Any], name: str) -> None:
    svc = compose["services"][name]
    test = _cmd(svc["healthcheck"]["test"])
    assert test[0] in ("CMD", "CMD-SHELL")
    if name != "sim_exchange":
        assert test[1:] == ["python", "-m", f"services.{name}", "--check"]
    assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert name not in svc["depends_on"], "a service cannot depend on itself"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_gets_redis_config_and_sim_urls(compose: dict[str, Any], name: str) -> None:
    env = compose["services"][name]["environment"]
    assert env["PF_REDIS_URL"] == "redis://redis:6379/0"
    assert env["PF_CONFIG"] == "/app/config/polyfleet.yaml"
    for key, url in SIM_URLS.items():
        assert _default(env[key]) == url, key
    mounts = compose["services"][name]["volumes"]
    assert any(m.endswith(":/app/config/polyfleet.yaml:ro") and "polyfleet.example.yaml" in _default(m.split(":/app")[0])
               for m in mounts), mounts


def test_the_default_config_file_exists() -> None:
    assert (ROOT / "config" / "polyfleet.example.yaml").is_file()


def test_sim_exchange_listens_on_every_interface_inside_its_container(compose: dict[str, Any]) -> None:
    assert compose["services"]["sim_exchange"]["environment"]["PF__SIM_EXCHANGE__HOST"] == "0.0.0.0"


def test_only_sim_exchange_and_the_api_publish_a_port_and_only_on_loopback(compose: dict[str, Any]) -> None:
    published = {name: svc["ports"] for name, svc in compose["services"].items() if svc.get("ports")}
    assert published == {"sim_exchange": ["127.0.0.1:8700:8700"], "api": ["127.0.0.1:${PF_API_PORT:-8800}:8800"]}
    assert compose["services"]["api"]["environment"]["PF__API__HOST"] == "0.0.0.0"  # inside its container


def test_sim_exchange_runs_under_the_sim_profile_and_nothing_waits_for_it(compose: dict[str, Any]) -> None:
    assert compose["services"]["sim_exchange"]["profiles"] == ["sim"]
    for name in APP_SERVICES:
        assert "sim_exchange" not in compose["services"][name]["depends_on"], name
    for name, svc in compose["services"].items():
        if name != "sim_exchange":
            assert "profiles" not in svc, name


def _compose_cli() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise AssertionError("no compose CLI to validate with: apt-get install docker-compose (`make test` does)")


def _config(files: list[Path], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [*_compose_cli(), *(a for f in files for a in ("-f", str(f))), "config", "-q"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PF_")}
    return subprocess.run(args, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_the_compose_cli_accepts_the_file_as_shipped() -> None:
    res = _config([COMPOSE], {})
    assert res.returncode == 0, res.stderr


def test_live_mode_refuses_to_start_without_each_secret() -> None:
    full = dict.fromkeys(LIVE_SECRETS, "x")
    assert _config([COMPOSE, LIVE], full).returncode == 0
    for name in LIVE_SECRETS:
        res = _config([COMPOSE, LIVE], {k: v for k, v in full.items() if k != name})
        assert res.returncode != 0, name
        assert name in res.stderr, (name, res.stderr)


def test_live_mode_points_every_service_at_polymarket() -> None:
    live = yaml.safe_load(LIVE.read_text())
    assert set(live["services"]) == set(APP_SERVICES) - {"sim_exchange"}
    for svc in live["services"].values():
        env = svc["environment"]
        assert env["PF__MODE"] == "live"
        assert env["PF__POLYMARKET__ENVIRONMENT"] == "production"
        for name in LIVE_SECRETS:
            target = "PF__LIVE_CONFIRMED" if name == "PF_LIVE_CONFIRMED" else name
            assert env[target].startswith("${" + name + ":?"), target


def test_maker_worker_can_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["maker_worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "PF_INSTANCE" not in worker["environment"]  # the container's hostname keeps replicas apart


def test_no_secret_has_a_value_in_the_file(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if any(word in key for word in ("PRIVATE_KEY", "SECRET", "PASSPHRASE", "API_KEY", "TOKEN", "PASSWORD")):
                assert str(value).startswith("${"), (name, key, value)
                assert _default(str(value)) == "", (name, key, value)


def test_the_dockerfile_builds_one_locked_non_root_image() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") or "FROM python:3.11-slim" in text
    assert "FROM python:3.11-slim" in text
    assert "uv sync --locked --no-dev" in text
    assert "\nUSER " in text
    assert "USER root" not in text


def test_the_dockerignore_keeps_secrets_and_state_out() -> None:
    lines = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "config/polyfleet.yaml", "var/"} <= lines
