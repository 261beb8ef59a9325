"""Service processes the way compose runs them: ``python -m services.<name>``, plus warm spares."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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



@contextlib.contextmanager
def stopped_after(procs: list[ServiceProcess], tail: int = 3000) -> Iterator[list[ServiceProcess]]:
    """Stop every process in ``procs`` (also those appended inside the block) when the block ends;
    when it fails, print each one's log tail first."""
    try:
        yield procs
    except BaseException:
        for p in procs:
            print(f"===== {p.name}\n{p.log()[-tail:]}")
        raise
    finally:
        for p in procs:
            p.stop()


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
