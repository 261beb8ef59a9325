"""sim_exchange as a process, and its admin routes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from harness.processes import ServiceProcess


class SimExchangeProcess(ServiceProcess):
    """sim_exchange as a process; ``start()`` waits until ``GET /version`` answers."""

    def __init__(self, config_path: Path, port: int, log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        super().__init__("sim_exchange", {"PF_CONFIG": str(config_path), **(extra_env or {})}, log_dir)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> SimExchangeProcess:
        """Start and wait (at most ``timeout``: a loaded 2-core machine under parallel tests can take
        tens of seconds to import it) until it answers; a sim that never does is stopped, not leaked."""
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                self.stop()
                raise RuntimeError(f"sim_exchange exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/version", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sim_exchange did not answer on {self.url} within {timeout:.0f} s:\n{self.log()}")


async def sim_get(sim: SimExchangeProcess, path: str, **params: Any) -> Any:
    """``GET {sim}{path}`` (admin and venue routes alike), asserting a 200; the JSON answer."""
    async with httpx.AsyncClient() as c:
        resp = await c.get(f"{sim.url}{path}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def sim_post(sim: SimExchangeProcess, path: str, body: dict[str, Any] | list[Any]) -> Any:
    """``POST {sim}{path}`` with a JSON body, asserting a 200; the JSON answer."""
    async with httpx.AsyncClient() as c:
        resp = await c.post(f"{sim.url}{path}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()
