"""sim_exchange as a process, a pool of them that tests share, and its admin routes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.config import write_config
from harness.processes import ServiceProcess
from harness.redis_server import free_port


class SimExchangeProcess(ServiceProcess):
    """sim_exchange as a process; ``start()`` waits until ``GET /version`` answers."""

    def __init__(self, config_path: Path, port: int, log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        super().__init__("sim_exchange", {"PF_CONFIG": str(config_path), **(extra_env or {})}, log_dir)
        self.port = port
        self.log_from = 0  # where log() starts: the last reset's offset in the log file

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

    def reset(self, config_path: Path, timeout: float = 30.0) -> SimExchangeProcess:
        """Make the running sim what a fresh start from ``config_path`` gives (``POST /_sim/reset``
        with its sim_exchange section: new markets, books, accounts, chain, relayer, faults, loops, no
        open sockets); ``env["PF_CONFIG"]``, which tests hand their services, becomes that file and
        :meth:`log` starts here."""
        section = (yaml.safe_load(config_path.read_text()) or {}).get("sim_exchange") or {}
        self.log_from = self.log_path.stat().st_size
        resp = httpx.post(f"{self.url}/_sim/reset", json={"sim_exchange": section}, timeout=timeout)
        if resp.status_code != 200:
            raise RuntimeError(f"sim_exchange refused the reset ({resp.status_code}): {resp.text}")
        self.env["PF_CONFIG"] = str(config_path)
        return self

    def log(self) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(self.log_from)
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class SimPool:
    """sim_exchange processes kept for the next test: :meth:`take` hands one out reset to the test's
    config (starting one only when none is free), :meth:`give_back` keeps it. A test session (each
    xdist worker) so starts one or two sims instead of one per test: a start costs about a second of
    CPU (imports, app), a reset a tenth of that, and the reset venue is the one a start would give
    (tests/integration/test_sim_reset.py)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.free: list[SimExchangeProcess] = []
        self.all: list[SimExchangeProcess] = []

    def take(self, config: Callable[[int], Path]) -> SimExchangeProcess:
        """A sim as freshly started from ``config(port)`` (the caller writes the file for that port)."""
        while self.free:
            proc = self.free.pop()
            try:
                return proc.reset(config(proc.port))
            except (RuntimeError, httpx.HTTPError):  # dead or wedged: never reused
                self._drop(proc)
        port = free_port()
        proc = SimExchangeProcess(write_config(self.log_dir / f"base-{port}.yaml", port), port, self.log_dir).start()
        self.all.append(proc)
        try:
            return proc.reset(config(port))
        except BaseException:
            self._drop(proc)
            raise

    def give_back(self, proc: SimExchangeProcess) -> None:
        if proc.alive():
            self.free.append(proc)
        else:
            self._drop(proc)

    def _drop(self, proc: SimExchangeProcess) -> None:
        proc.stop()
        if proc in self.all:
            self.all.remove(proc)

    def close(self) -> None:
        for proc in self.all:
            proc.stop()
        self.all.clear()
        self.free.clear()


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
