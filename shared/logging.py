"""One log format for every service: time, level, service, instance, message (or JSON lines).

* stderr always; with ``logging.dir`` also one file per service per day
  (``{dir}/{service}.YYYY-MM-DD.log``, rotated at midnight, files older than
  ``logging.retention_days`` deleted).
* ``logging.json``: one JSON object per line (loguru's ``serialize``), same fields.
* Secrets never reach a sink: every message passes :func:`redact` first, which masks the values
  of the secrets this process holds (``PF_PRIVATE_KEY``, CLOB credentials, ``PF_API_TOKEN``, the
  alert webhook URL), bearer tokens, passwords in URLs and Telegram bot tokens. An exception
  attached to a record (``logger.exception``, ``opt(exception=...)``) is formatted here and
  redacted with the message: its text (a URL with a password, a client's error body) would
  otherwise reach the sink unmasked.
* Standard-library logging (uvicorn, httpx, websockets, ...) is routed into loguru at WARNING and
  above, so those records get the same format and the same redaction.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from loguru import logger

from shared.config import ConfigError, LoggingSection, load_secrets

_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
    "<cyan>{extra[service]}</cyan>:<cyan>{extra[instance]}</cyan> | {message}"
)
MASK = "***"
MIN_SECRET_LEN = 6  # shorter values would mask ordinary words
_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"(://[^:/@\s]*:)[^@\s]+@"), r"\1" + MASK + "@"),  # scheme://user:password@host
    (re.compile(r"\bbot\d{5,}:[A-Za-z0-9_-]{20,}"), "bot" + MASK),  # Telegram bot token in a URL
    (re.compile(r"(?i)((?:passphrase|secret|api_key|private_key|password)[\"']?\s*[=:]\s*[\"']?)[^\s\"',}]+"),
     r"\1" + MASK),
)


def secret_values() -> list[str]:
    try:
        secrets = load_secrets()
    except ConfigError:
        return []
    return sorted({v for _, v in secrets if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def prune_old_logs(directory: Path, service: str, retention_days: int) -> list[Path]:
    """Delete this service's daily files older than the retention. loguru prunes only when it
    rotates (at midnight), so a process that restarts often would otherwise keep them forever."""
    cutoff = time.time() - retention_days * 86400
    removed = []
    for path in directory.glob(f"{service}.*.log"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed


class _ToLoguru(logging.Handler):
    """A standard-library record re-emitted through loguru (and so through the redaction)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info or None).log(level, "{}: {}", record.name, record.getMessage())


def setup_logging(service: str, instance: str, cfg: LoggingSection | None = None) -> None:
    """Route loguru to stderr (and a daily file under ``logging.dir``) with service + instance."""
    cfg = cfg or LoggingSection()
    secrets = secret_values()

    def patch(record: Any) -> None:
        message = record["message"]
        exc = record["exception"]
        if exc is not None and exc.type is not None:
            # the traceback becomes part of the message, so it is redacted with it
            message += "\n" + "".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip()
            record["exception"] = None
        record["message"] = redact(message, secrets)

    logger.remove()
    logger.configure(extra={"service": service, "instance": instance}, patcher=patch)
    logging.basicConfig(handlers=[_ToLoguru()], level=logging.WARNING, force=True)
    logger.add(sys.stderr, level=cfg.level, format=_FORMAT, serialize=cfg.json_output,
               colorize=None if not cfg.json_output else False, backtrace=False, diagnose=False)
    if cfg.dir:
        Path(cfg.dir).mkdir(parents=True, exist_ok=True)
        prune_old_logs(Path(cfg.dir), service, cfg.retention_days)
        logger.add(
            str(Path(cfg.dir) / f"{service}.{{time:YYYY-MM-DD}}.log"),
            level=cfg.level, format=_FORMAT, serialize=cfg.json_output, rotation="00:00",
            retention=f"{cfg.retention_days} days", backtrace=False, diagnose=False,
            colorize=False,
        )
