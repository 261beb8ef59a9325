from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from harness import RedisServer, SimExchangeProcess, free_port, write_config
from shared.keys import Keys

# The CLI's rich consoles are built when cli/ is imported; in an xdist worker rich fixes their width
# then (80 columns without a terminal) and no longer reads COLUMNS at print time, so the tables the
# CLI tests read would wrap. Wide enough for every table, set before any test module imports cli/.
os.environ.setdefault("COLUMNS", "400")


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


@pytest.fixture
def start_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SimExchangeProcess]]:
    """Factory: ``start_sim(overrides={...})`` starts sim_exchange as a process with a config
    built by ``write_config`` (sim quiet: no scripted wallets) and returns its handle."""
    started: list[SimExchangeProcess] = []

    def _start(overrides: dict[str, object] | None = None) -> SimExchangeProcess:
        d = tmp_path_factory.mktemp("sim")
        port = free_port()
        cfg = write_config(d / "polyfleet.yaml", port, overrides)
        proc = SimExchangeProcess(cfg, port, d).start()
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.stop()
