"""shared/logging: per-service daily files, JSON lines, retention, and secrets never written."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from loguru import logger

from shared.config import LoggingSection
from shared.logging import MASK, redact, setup_logging

KEY = "0x" + "5e" * 32
API = "api-token-abcdef123456"


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    yield
    logger.remove()
    logger.configure(patcher=None)


def test_redact_masks_held_secrets_and_known_shapes() -> None:
    text = (f"key {KEY} token {API} Authorization: Bearer abc.DEF-123 redis://u:hunter2@h:6379/0 "
            "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage "
            "passphrase=opensesame secret: 's3cr3t'")
    out = redact(text, [KEY, API])
    for leaked in (KEY, API, "abc.DEF-123", "hunter2", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "opensesame", "s3cr3t"):
        assert leaked not in out, leaked
    assert out.count(MASK) == 7
    assert "redis://u:***@h:6379/0" in out


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "token 7132104567 condition 0x" + "ab" * 32 + " price 0.51"
    assert redact(text, [KEY]) == text


def test_daily_file_per_service_in_json_with_secrets_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_PRIVATE_KEY", KEY)
    monkeypatch.setenv("PF_API_TOKEN", API)
    setup_logging("orchestrator", "o1", LoggingSection(dir=str(tmp_path), json=True, level="INFO"))
    logger.info("signing with {} for {}", KEY, API)
    logger.debug("below the level")
    logger.remove()  # flush and close the file
    [path] = list(tmp_path.glob("orchestrator.*.log"))
    assert path.name == f"orchestrator.{time.strftime('%Y-%m-%d')}.log"
    [line] = path.read_text().splitlines()
    record = json.loads(line)["record"]
    assert record["extra"] == {"service": "orchestrator", "instance": "o1"}
    assert record["message"] == f"signing with {MASK} for {MASK}"
    assert KEY not in line
    assert API not in line


def test_an_exception_text_is_masked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_PRIVATE_KEY", KEY)
    setup_logging("api", "a1", LoggingSection(dir=str(tmp_path), level="INFO"))
    try:
        raise ConnectionError(f"could not reach redis://:hunter22@h:6379 with key {KEY}")
    except ConnectionError:
        logger.exception("connect failed")
    logger.remove()
    [path] = list(tmp_path.glob("api.*.log"))
    text = path.read_text()
    assert "connect failed" in text
    assert "ConnectionError: could not reach redis://:***@h:6379 with key ***" in text  # the traceback is kept
    assert "Traceback (most recent call last)" in text
    assert KEY not in text
    assert "hunter22" not in text


def test_standard_logging_records_are_routed_and_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_API_TOKEN", API)
    setup_logging("api", "a2", LoggingSection(dir=str(tmp_path), level="INFO"))
    logging.getLogger("uvicorn.error").error("request with %s failed", API)
    logging.getLogger("httpx").info("HTTP Request: GET /x")  # below WARNING: not routed
    logger.remove()
    logging.basicConfig(force=True)
    [path] = list(tmp_path.glob("api.*.log"))
    text = path.read_text()
    assert f"uvicorn.error: request with {MASK} failed" in text
    assert API not in text
    assert "HTTP Request" not in text


def test_old_daily_files_are_deleted_after_retention(tmp_path: Path) -> None:
    old = tmp_path / "api.2020-01-01.log"
    old.write_text("old\n")
    ancient = time.time() - 30 * 86400
    os.utime(old, (ancient, ancient))
    other = tmp_path / "orchestrator.2020-01-01.log"  # another service's files are not this sink's
    other.write_text("other\n")
    os.utime(other, (ancient, ancient))
    setup_logging("api", "a1", LoggingSection(dir=str(tmp_path), retention_days=7))
    logger.info("hello")
    logger.remove()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "api.2020-01-01.log" not in names
    assert f"api.{time.strftime('%Y-%m-%d')}.log" in names
