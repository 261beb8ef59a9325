"""Test support: a private redis-server, service processes, and eventually()."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on a free loopback port (never the developer's 6379)."""

    def __init__(self, appendonly: bool = False, password: str = "", extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pf-redis-")
        self.appendonly = appendonly
        self.password = password
        self.extra = extra  # more redis-server arguments (e.g. a slow load for the LOADING test)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", self.dir,
             "--protected-mode", "yes", *(["--requirepass", self.password] if self.password else []), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    # up (and, if so, asking for AUTH, or still loading its data)
                    if s.recv(16).startswith((b"+PONG", b"-NOAUTH", b"-LOADING")):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)

    def halt(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process but keep ``dir`` (the append-only file): ``start()`` again resumes from it.
        SIGTERM lets redis flush the AOF on shutdown; SIGKILL loses what was not fsynced yet."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def restart(self, sig: int = signal.SIGTERM) -> RedisServer:
        """The same server again: same port, same dir, so with ``appendonly`` the data survives."""
        self.halt(sig)
        return self.start()


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.05,
                     what: str = "condition") -> T:
    """Await ``check()`` until it returns a truthy value (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = await check()
            if last:
                return last  # type: ignore[return-value]
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


class ServiceProcess:
    """``python -m services.<name>`` as a real process, the way compose runs it."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, args: list[str] | None = None) -> None:
        self.name = name
        self.env = env
        self.args = args or []
        self.log_path = log_dir / f"{name}-{len(list(log_dir.glob(name + '*')))}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        full_env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}", *self.args],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def sim_polymarket(port: int) -> dict[str, str]:
    """The polymarket section that points every client at a sim_exchange on ``port`` (the sim serves
    its venue environment, every URL and address, at /_sim/environment)."""
    return {"environment": "sim", "sim_url": f"http://127.0.0.1:{port}"}


def write_config(path: Path, sim_port: int, overrides: dict[str, object] | None = None) -> Path:
    """A config file for tests: sim mode, every URL at the sim, sim quiet unless overridden."""
    import yaml

    from shared.config import deep_merge

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


class SimExchangeProcess(ServiceProcess):
    """sim_exchange as a process; ``start()`` waits until ``GET /version`` answers."""

    def __init__(self, config_path: Path, port: int, log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        super().__init__("sim_exchange", {"PF_CONFIG": str(config_path), **(extra_env or {})}, log_dir)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimExchangeProcess:
        import httpx

        super().start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"sim_exchange exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/version", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"sim_exchange did not answer on {self.url}:\n{self.log()}")


async def sim_get(sim: SimExchangeProcess, path: str, **params: Any) -> Any:
    """``GET {sim}{path}`` (admin and venue routes alike), asserting a 200; the JSON answer."""
    import httpx

    async with httpx.AsyncClient() as c:
        resp = await c.get(f"{sim.url}{path}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def sim_post(sim: SimExchangeProcess, path: str, body: dict[str, Any]) -> Any:
    """``POST {sim}{path}`` with a JSON body, asserting a 200; the JSON answer."""
    import httpx

    async with httpx.AsyncClient() as c:
        resp = await c.post(f"{sim.url}{path}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


WARM_MARKER = "warm spare: imported, waiting"
_WARM_CODE = (
    "import importlib, runpy, sys\n"
    "name = sys.argv[1]\n"
    "importlib.import_module(f'services.{name}.service')\n"
    f"print({WARM_MARKER!r}, flush=True)\n"
    "sys.stdin.readline()\n"
    "sys.argv = [f'services.{name}']\n"
    "runpy.run_module(f'services.{name}', run_name='__main__', alter_sys=True)\n"
)


class WarmServiceProcess(ServiceProcess):
    """A service process started ahead of time: it imports its modules, then waits on stdin until
    :meth:`release`, when it runs ``python -m services.<name>`` as usual. A supervisor can so put a
    killed process back within milliseconds (the soak's restart inside a worker's lease)."""

    def start(self) -> WarmServiceProcess:
        full_env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WARM_CODE, self.name], cwd=ROOT, env=full_env,
            stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
        )
        return self

    def warm(self) -> bool:
        return self.alive() and WARM_MARKER in self.log()

    def release(self) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()


async def read_stream(r: Any, key: str, page: int = 10_000) -> list[tuple[str, dict[str, str]]]:
    """Every entry of a stream, read in pages (the soak's and the system benchmark's streams are
    too long for one XRANGE)."""
    out: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        rows = await r.xrange(key, min=start, count=page)
        out.extend(rows[1:] if out and rows and rows[0][0] == out[-1][0] else rows)
        if len(rows) < page:
            return out
        start = rows[-1][0]
