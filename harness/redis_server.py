"""A throwaway redis-server on a free loopback port, for tests, benchmarks and the soak."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time


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
