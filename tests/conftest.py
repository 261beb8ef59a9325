from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from harness import RedisServer, SimExchangeProcess, SimPool, share_default_ssl_context, write_config
from shared.keys import Keys

# The CLI's rich consoles are built when cli/ is imported; in an xdist worker rich fixes their width
# then (80 columns without a terminal) and no longer reads COLUMNS at print time, so the tables the
# CLI tests read would wrap. Wide enough for every table, set before any test module imports cli/.
os.environ.setdefault("COLUMNS", "400")
# the test process makes thousands of short-lived httpx clients: one TLS context for all (harness/tls.py)
share_default_ssl_context()
# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set (this module loads before xdist starts its
# workers, so they and every service or sim process a test starts inherit it). Without cached bytecode each
# worker rewrote every test module's asserts (~4 s of CPU a worker) and each process start compiled its
# imports from source (~0.4 s of a sim's ~1.2 s start); __pycache__ is ignored by git.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


def _start_order(item: pytest.Item) -> int:
    """Longest first: the soak, then the end-to-end tests, then the rest. Under xdist the long ones
    start at once on their own workers while the short ones fill the others, instead of the soak
    starting last and the whole run waiting for it alone."""
    if item.get_closest_marker("soak"):
        return 0
    if item.get_closest_marker("e2e"):
        return 1
    return 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_order)  # stable: the collection order holds within each group


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
async def r(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on the private server, flushed before each test (the server is ours alone)."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys("pf")


@pytest.fixture(scope="session")
def sim_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimPool]:
    """The session's sim_exchange processes (one per xdist worker, a second while a test holds two)."""
    pool = SimPool(tmp_path_factory.mktemp("sim-pool"))
    yield pool
    pool.close()


@pytest.fixture
def start_sim(tmp_path_factory: pytest.TempPathFactory,
              sim_pool: SimPool) -> Iterator[Callable[..., SimExchangeProcess]]:
    """Factory: ``start_sim(overrides={...})`` returns a sim_exchange process in the state a fresh start
    with a config built by ``write_config`` gives (sim quiet: no scripted wallets): one of the
    session's, reset to that config (``SimExchangeProcess.reset``), whose ``env["PF_CONFIG"]`` is the
    test's file. Back to the pool when the test ends."""
    taken: list[SimExchangeProcess] = []

    def _start(overrides: dict[str, object] | None = None) -> SimExchangeProcess:
        d = tmp_path_factory.mktemp("sim")
        proc = sim_pool.take(lambda port: write_config(d / "polyfleet.yaml", port, overrides))
        taken.append(proc)
        return proc

    yield _start
    for proc in taken:
        sim_pool.give_back(proc)
