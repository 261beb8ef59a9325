"""The test and benchmark harness: a private redis-server, service processes the way compose runs
them, sim_exchange as a process, a service on a task of the test's loop, config files, waiting for conditions, and the whole-system soak
(:mod:`harness.soak`). Public and typed; ``tests/`` and ``bench/`` both build on it."""

from harness.conditions import worker_ready
from harness.config import sim_polymarket, write_config
from harness.in_process import running
from harness.processes import ROOT, WARM_MARKER, ServiceProcess, WarmServiceProcess, stopped_after
from harness.redis_server import RedisServer, free_port
from harness.sim import SimExchangeProcess, SimPool, sim_get, sim_post
from harness.streams import read_messages, read_stream
from harness.tls import share_default_ssl_context
from harness.waiting import eventually

__all__ = [
    "ROOT", "WARM_MARKER", "RedisServer", "ServiceProcess", "SimExchangeProcess", "SimPool", "WarmServiceProcess",
    "eventually", "free_port", "read_messages", "read_stream", "running", "sim_get", "sim_polymarket", "sim_post",
    "share_default_ssl_context", "stopped_after", "worker_ready", "write_config",
]
