"""Prometheus ``/metrics`` for every service, started once by ``shared.runtime.service_main``.

Each service listens on ``monitoring.metrics_host`` : ``monitoring.metrics_port_base`` + its offset
(:data:`PORT_OFFSETS`) when ``monitoring.metrics_enabled`` is true; ``PF_METRICS_PORT`` overrides the
port for one process (two maker workers on one host). A port already taken is not fatal: the
process serves on a free port instead and logs which (metrics must never stop trading).

Every process exports, besides its own metrics (docs/operations.md lists them all):
``polyfleet_service_info{service,instance,mode}``, ``polyfleet_service_start_time_seconds``,
``polyfleet_log_messages_total{service,level}`` (WARNING and above) and the standard
``process_*`` / ``python_*`` collectors of prometheus-client.
"""

from __future__ import annotations

import os
import time
from typing import Any

from loguru import logger
from prometheus_client import Counter, Gauge, start_http_server

from shared.config import Settings

PORT_OFFSETS = {
    "sim_exchange": 0, "signal_collector": 1, "ws_gateway": 2, "orchestrator": 3, "maker_worker": 4,
    "api": 5, "alerter": 6, "arb_scanner": 7, "redeemer": 8,
}
OTHER_OFFSET = 9

SERVICE_INFO = Gauge("polyfleet_service_info", "Always 1; labels say what runs here", ("service", "instance", "mode"))
START_TIME = Gauge("polyfleet_service_start_time_seconds", "When this process started (unix seconds)", ("service",))
LOG_MESSAGES = Counter("polyfleet_log_messages", "Log lines at WARNING or above, by level", ("service", "level"))

_bound: dict[str, int] = {}


def metrics_port(service: str, settings: Settings, environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    if env.get("PF_METRICS_PORT"):
        return int(env["PF_METRICS_PORT"])
    return settings.monitoring.metrics_port_base + PORT_OFFSETS.get(service, OTHER_OFFSET)


def start_metrics(service: str, instance: str, settings: Settings) -> int | None:
    """Serve /metrics for this process (once); returns the port, or None when disabled."""
    if not settings.monitoring.metrics_enabled:
        return None
    if "port" in _bound:
        return _bound["port"]
    SERVICE_INFO.labels(service, instance, settings.mode).set(1)
    START_TIME.labels(service).set(time.time())

    def count(message: Any) -> None:
        LOG_MESSAGES.labels(service, message.record["level"].name).inc()

    logger.add(count, level="WARNING", format="{message}")
    host, port = settings.monitoring.metrics_host, metrics_port(service, settings)
    try:
        server, _ = start_http_server(port, addr=host)
    except OSError as exc:
        server, _ = start_http_server(0, addr=host)
        logger.warning("metrics port {} is taken ({}); serving /metrics on {} instead (set PF_METRICS_PORT)",
                       port, exc, server.server_port)
    _bound["port"] = int(server.server_port)
    logger.info("metrics on http://{}:{}/metrics", host, _bound["port"])
    return _bound["port"]
