"""Run one service process: config, logging, signals, bounded graceful drain, exit codes.

Every ``services/<name>/__main__.py`` is ``raise SystemExit(service_main("name", Factory))``.
SIGTERM / SIGINT ask the service to stop (``stop()``); ``run()`` then has ``drain_sec`` to
return before it is cancelled. ``--check`` turns the service's heartbeat into an exit code for
container healthchecks.

When ``monitoring.metrics_enabled``, every service serves Prometheus ``/metrics``
(shared/metrics.py) from here, so no service opens its own port.

Exit codes: 0 clean stop, 1 crashed, 2 bad configuration, 3 drain timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
from collections.abc import Callable
from typing import Protocol

from loguru import logger

from shared import gctune
from shared.config import ConfigError, Settings, load_settings
from shared.logging import setup_logging
from shared.metrics import start_metrics

EXIT_OK, EXIT_CRASH, EXIT_CONFIG, EXIT_DRAIN_TIMEOUT = 0, 1, 2, 3


class Service(Protocol):
    async def run(self) -> None: ...
    def stop(self) -> None: ...


def instance_id() -> str:
    """Stable per process: ``PF_INSTANCE`` if set, else host-pid (unique across a compose scale)."""
    return os.environ.get("PF_INSTANCE") or f"{socket.gethostname()}-{os.getpid()}"


async def run_until_stopped(service: Service, drain_sec: float = 10.0) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(service.run())
    stopping = asyncio.Event()

    def request_stop(signame: str) -> None:
        if stopping.is_set():
            logger.warning("{} again: cancelling now", signame)
            task.cancel()
            return
        logger.info("{} received: draining (at most {:.0f}s)", signame, drain_sec)
        stopping.set()
        service.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop, sig.name)
    try:
        stop_wait = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=drain_sec)
            except TimeoutError:
                logger.error("drain took longer than {:.0f}s: cancelling", drain_sec)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return EXIT_DRAIN_TIMEOUT
        stop_wait.cancel()
        task.result()
        return EXIT_OK
    except asyncio.CancelledError:
        return EXIT_OK
    except Exception:
        logger.exception("service crashed")
        return EXIT_CRASH
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def service_main(name: str, factory: Callable[[Settings, str], Service], drain_sec: float = 10.0,
                 argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument("--check", action="store_true",
                        help="exit 0 if this service has a fresh heartbeat in Redis, else 1")
    args = parser.parse_args(argv)
    if args.check:
        from shared.redisio.health import main as check_main

        return check_main(["--check", name])
    instance = instance_id()
    try:
        settings = load_settings()
    except ConfigError as exc:
        setup_logging(name, instance)
        logger.error("{}", exc)
        return EXIT_CONFIG
    setup_logging(name, instance, settings.logging)
    logger.info("starting {} (mode {}, instance {})", name, settings.mode, instance)
    try:
        service = factory(settings, instance)
    except ConfigError as exc:
        logger.error("{}", exc)
        return EXIT_CONFIG
    start_metrics(name, instance, settings)
    gctune.tune(enabled=os.environ.get("PF_GC_TUNE", "1") != "0")
    code = asyncio.run(run_until_stopped(service, drain_sec))
    logger.info("{} stopped (exit {})", name, code)
    return code
