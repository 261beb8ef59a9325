"""The API behind a real uvicorn: websocket push (in-process server on a free port) and the API as
a real process (``python -m services.api``) with --check, /metrics and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import connect

from harness import ROOT, RedisServer, ServiceProcess, eventually, free_port
from shared.keys import Keys
from tests.integration.api_support import (
    API_TOKEN,
    AUTH,
    TOKEN,
    buy_signal,
    fill,
    make_app,
    orchestrator_running,
    register_worker,
)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _true(server.started), timeout=10, what="uvicorn started")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _true(value: bool) -> bool:
    return value


async def next_of(ws: Any, kind: str, pred: Any = lambda m: True, timeout: float = 10.0) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while True:
            msg = json.loads(await ws.recv())
            if kind in (msg["type"], "any") and pred(msg):
                return msg
    return await asyncio.wait_for(find(), timeout)


async def test_websocket_pushes_token_state_changes_events_and_fills(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys)
    async with serving(make_app(r, keys)) as addr, connect(f"ws://{addr}/api/ws", additional_headers=AUTH) as ws:
        assert (await next_of(ws, "hello"))["ts"] > 0
        async with orchestrator_running(r):
            await buy_signal(r, keys)
            seen: list[dict[str, Any]] = []

            def starting_pushed(m: dict[str, Any]) -> bool:
                seen.append(m)
                return m["type"] == "token" and m["token"]["state"] == "starting"

            starting = await next_of(ws, "any", starting_pushed)
            assert (starting["token"]["token_id"], starting["token"]["owner"]) == (TOKEN, "w1")
            kinds = [m["entry"]["kind"] for m in seen if m["type"] == "event"]
            assert kinds[:2] == ["token.queued", "token.starting"], kinds
            # every lifecycle event is followed by the token's view as it is now
            assert [m["type"] for m in seen[:2]] == ["event", "token"]
        await fill(r, keys, "BUY", 0.5, 4)
        pushed = await next_of(ws, "fill")
        assert (pushed["entry"]["side"], pushed["entry"]["size"]) == ("BUY", "4.0")
        await r.xadd(keys.opportunities(), {"kind": "yes_no_sum", "edge": "0.02"})
        opp = await next_of(ws, "opportunity")
        assert opp["entry"]["edge"] == "0.02"


async def test_websocket_needs_the_token_and_takes_it_as_a_subprotocol(r: aioredis.Redis, keys: Keys) -> None:
    async with serving(make_app(r, keys)) as addr:
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with connect(f"ws://{addr}/api/ws"):
                pass
        assert refused.value.response.status_code == 403
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with connect(f"ws://{addr}/api/ws", subprotocols=["polyfleet", "bearer.wrong"]):  # type: ignore[list-item]
                pass
        # What a browser does: the token travels as a subprotocol; the server answers "polyfleet".
        async with connect(f"ws://{addr}/api/ws", subprotocols=["polyfleet", f"bearer.{API_TOKEN}"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "polyfleet"
            assert (await next_of(ws, "hello"))["type"] == "hello"


def _config(tmp: Path, api_port: int) -> Path:
    path = tmp / "polyfleet.yaml"
    path.write_text(f"api: {{host: 127.0.0.1, port: {api_port}}}\nmonitoring: {{heartbeat_interval_sec: 0.5, "
                    "metrics_enabled: true}\n")
    return path


async def test_the_api_as_a_process_serves_checks_exports_metrics_and_stops_cleanly(
        redis_server: RedisServer, r: aioredis.Redis, tmp_path: Path) -> None:
    api_port, metrics_port = free_port(), free_port()
    env = {"PF_CONFIG": str(_config(tmp_path, api_port)), "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf",
           "PF_API_TOKEN": API_TOKEN, "PF_METRICS_PORT": str(metrics_port)}
    proc = ServiceProcess("api", env, tmp_path).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=5) as http:
            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(up, timeout=20, what=f"API answering\n{proc.log()}")
            assert (await http.get("/api/workers")).status_code == 401
            assert (await http.get("/api/workers", headers=AUTH)).json() == []
            page = await http.get("/")
            assert page.status_code == 200
            assert "polyfleet" in page.text
            assert (await http.get("/static/app.js")).status_code == 200
            assert "/api/tokens/{token_id}/stop" in (await http.get("/openapi.json")).json()["paths"]
            metrics = (await httpx.AsyncClient().get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            assert 'polyfleet_service_info{instance=' in metrics
            assert 'service="api"' in metrics

        async def check() -> bool:
            res = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "services.api", "--check"], cwd=ROOT,
                                          env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True)
            return res.returncode == 0

        await eventually(check, timeout=10, what="api --check exits 0")
        assert proc.alive()
    finally:
        code = proc.stop()
    assert code == 0, proc.log()[-3000:]
    assert "API token" not in proc.log()
    assert API_TOKEN not in proc.log()


async def test_the_api_refuses_to_start_without_a_token_exit_2(redis_server: RedisServer, tmp_path: Path) -> None:
    env = {"PF_CONFIG": str(_config(tmp_path, free_port())), "PF_REDIS_URL": redis_server.url, "PF_API_TOKEN": ""}
    proc = ServiceProcess("api", env, tmp_path).start()
    assert proc.proc is not None
    code = await asyncio.to_thread(proc.proc.wait, 20)
    proc.stop()
    assert code == 2
    assert "PF_API_TOKEN is not set" in proc.log()
