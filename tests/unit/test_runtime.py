"""run_until_stopped / service_main: signals, a bounded drain, and exit codes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from shared.config import Settings
from shared.runtime import (
    EXIT_CONFIG,
    EXIT_CRASH,
    EXIT_DRAIN_TIMEOUT,
    EXIT_OK,
    instance_id,
    run_until_stopped,
    service_main,
)


class Polite:
    """Asks for its own SIGTERM once running, then returns as soon as stop() is called."""

    def __init__(self, sig: int = signal.SIGTERM) -> None:
        self.sig = sig
        self.stop_calls = 0
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        os.kill(os.getpid(), self.sig)
        await asyncio.wait_for(self._stopped.wait(), timeout=10)

    def stop(self) -> None:
        self.stop_calls += 1
        self._stopped.set()


class Stubborn:
    """Ignores stop(): the drain must time out and cancel it."""

    def __init__(self, signals: int = 1) -> None:
        self.signals = signals
        self.stop_calls = 0
        self.cancelled = False

    async def run(self) -> None:
        try:
            for _ in range(self.signals):
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(0.05)
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def stop(self) -> None:
        self.stop_calls += 1


class Crashing:
    def __init__(self, after_stop: bool = False) -> None:
        self.after_stop = after_stop
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        if self.after_stop:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(self._stopped.wait(), timeout=10)
        raise RuntimeError("boom")

    def stop(self) -> None:
        self._stopped.set()


class Finishes:
    def __init__(self) -> None:
        self.ran = False

    async def run(self) -> None:
        await asyncio.sleep(0)
        self.ran = True

    def stop(self) -> None:
        raise AssertionError("stop() without a signal")


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """service_main reconfigures loguru; put the default sink back afterwards."""
    yield
    logger.remove()
    logger.add(sys.stderr)


async def test_sigterm_calls_stop_and_a_prompt_stop_exits_ok() -> None:
    svc = Polite()
    assert await run_until_stopped(svc, drain_sec=5) == EXIT_OK
    assert svc.stop_calls == 1


async def test_sigint_is_a_stop_request_too() -> None:
    svc = Polite(signal.SIGINT)
    assert await run_until_stopped(svc, drain_sec=5) == EXIT_OK
    assert svc.stop_calls == 1


async def test_a_service_that_returns_by_itself_exits_ok() -> None:
    svc = Finishes()
    assert await run_until_stopped(svc, drain_sec=5) == EXIT_OK
    assert svc.ran


async def test_a_service_that_ignores_stop_is_cancelled_after_the_drain() -> None:
    svc = Stubborn()
    started = time.monotonic()
    assert await run_until_stopped(svc, drain_sec=0.3) == EXIT_DRAIN_TIMEOUT
    assert time.monotonic() - started < 5
    assert svc.stop_calls == 1
    assert svc.cancelled


async def test_a_second_signal_cancels_at_once() -> None:
    svc = Stubborn(signals=2)
    started = time.monotonic()
    code = await run_until_stopped(svc, drain_sec=20)
    assert time.monotonic() - started < 5
    assert svc.cancelled
    assert svc.stop_calls == 1
    assert code in (EXIT_OK, EXIT_DRAIN_TIMEOUT)


async def test_a_crash_exits_with_the_crash_code() -> None:
    assert await run_until_stopped(Crashing(), drain_sec=5) == EXIT_CRASH


async def test_a_crash_while_draining_exits_with_the_crash_code() -> None:
    assert await run_until_stopped(Crashing(after_stop=True), drain_sec=5) == EXIT_CRASH


async def test_signal_handlers_are_removed_afterwards() -> None:
    await run_until_stopped(Finishes(), drain_sec=1)
    loop = asyncio.get_running_loop()
    assert loop.remove_signal_handler(signal.SIGTERM) is False
    assert loop.remove_signal_handler(signal.SIGINT) is False


def test_exit_codes_are_distinct() -> None:
    assert len({EXIT_OK, EXIT_CRASH, EXIT_CONFIG, EXIT_DRAIN_TIMEOUT}) == 4
    assert EXIT_OK == 0


def test_service_main_refuses_a_bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "polyfleet.yaml"
    cfg.write_text("risk: {max_notional_totl: 5}\n")
    monkeypatch.setenv("PF_CONFIG", str(cfg))

    def factory(settings: Settings, instance: str) -> Finishes:
        raise AssertionError("must not build a service from a bad config")

    assert service_main("orchestrator", factory, argv=[]) == EXIT_CONFIG


def test_service_main_builds_and_runs_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "polyfleet.yaml"
    cfg.write_text("scheduler: {max_concurrent_jobs: 3}\n")
    monkeypatch.setenv("PF_CONFIG", str(cfg))
    monkeypatch.setenv("PF_INSTANCE", "unit-1")
    for name in [n for n in os.environ if n.startswith("PF__")]:
        monkeypatch.delenv(name)
    seen: list[tuple[int, str]] = []

    def factory(settings: Settings, instance: str) -> Finishes:
        seen.append((settings.scheduler.max_concurrent_jobs, instance))
        return Finishes()

    assert service_main("orchestrator", factory, argv=[]) == EXIT_OK
    assert seen == [(3, "unit-1")]


def test_instance_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_INSTANCE", "worker-7")
    assert instance_id() == "worker-7"
    monkeypatch.delenv("PF_INSTANCE")
    assert instance_id().endswith(f"-{os.getpid()}")
