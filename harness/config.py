"""Config files for tests and benchmarks: sim mode, every client pointed at one sim_exchange."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.config import deep_merge


def sim_polymarket(port: int) -> dict[str, str]:
    """The polymarket section that points every client at a sim_exchange on ``port`` (the sim serves
    its venue environment, every URL and address, at /_sim/environment)."""
    return {"environment": "sim", "sim_url": f"http://127.0.0.1:{port}"}


def write_config(path: Path, sim_port: int, overrides: dict[str, object] | None = None) -> Path:
    """A config file for tests: sim mode, every URL at the sim, sim quiet unless overridden."""
    base: dict[str, object] = {
        "mode": "sim",
        "polymarket": sim_polymarket(sim_port),
        # trades settle at once unless a test sets a lag (the sim's default lag is for demos)
        "sim_exchange": {"host": "127.0.0.1", "port": sim_port, "wallets": [], "tick_interval_ms": 200,
                         "settle_lag_ms": 0},
        "copytrade": {"poll_interval_sec": 0.5},
        "gateway": {"reconcile_interval_sec": 1.0},
        "workers": {"lease_ms": 3000, "heartbeat_interval_sec": 0.5},
        "monitoring": {"heartbeat_interval_sec": 1.0},
        "logging": {"level": "DEBUG"},
    }
    data = deep_merge(base, overrides or {})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
