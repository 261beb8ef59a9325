"""One log format for every service: time, level, service, instance, message (or JSON lines)."""

from __future__ import annotations

import sys
from pathlib import Path

from loguru import logger

from shared.config import LoggingSection

_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
    "<cyan>{extra[service]}</cyan>:<cyan>{extra[instance]}</cyan> | {message}"
)


def setup_logging(service: str, instance: str, cfg: LoggingSection | None = None) -> None:
    """Route loguru to stderr (and a daily file under ``logging.dir``) with service + instance."""
    cfg = cfg or LoggingSection()
    logger.remove()
    logger.configure(extra={"service": service, "instance": instance})
    logger.add(sys.stderr, level=cfg.level, format=_FORMAT, serialize=cfg.json_output,
               colorize=None if not cfg.json_output else False, backtrace=False, diagnose=False)
    if cfg.dir:
        Path(cfg.dir).mkdir(parents=True, exist_ok=True)
        logger.add(
            str(Path(cfg.dir) / f"{service}.{{time:YYYY-MM-DD}}.log"),
            level=cfg.level, format=_FORMAT, serialize=cfg.json_output, rotation="00:00",
            retention=f"{cfg.retention_days} days", backtrace=False, diagnose=False,
            colorize=False,
        )
