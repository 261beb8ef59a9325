"""services/api against a real Redis (and a real orchestrator loop for control calls): auth,
validation, reads, control requests, effective config."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from harness import RedisServer
from services.api.fleet_metrics import FleetCollector
from shared.keys import Keys
from shared.messages import decode
from tests.integration.api_support import (
    API_TOKEN,
    TOKEN,
    api_settings,
    buy_signal,
    client,
    fill,
    make_app,
    orchestrator_running,
    register_worker,
    started,
    trade_status,
    wait_for,
)


async def running_token(r: aioredis.Redis, keys: Keys) -> None:
    """A token that really runs: BUY -> START on w1 -> started -> a BUY fill of 10 @ 0.40 -> a book."""
    await register_worker(r, keys)
    async with orchestrator_running(r):
        await buy_signal(r, keys)
        await wait_for(lambda: _state(r, keys, "starting"))
        await started(r, keys, 1)
        await fill(r, keys, "BUY", 0.40, 10)
        await wait_for(lambda: _position(r, keys, 10.0))
    await r.hset(keys.book(TOKEN), mapping={"token_id": TOKEN, "bid": "0.49", "ask": "0.51", "ts_recv": "1"})


async def _state(r: aioredis.Redis, keys: Keys, state: str) -> bool:
    return await r.hget(keys.token(TOKEN), "state") == state


async def _position(r: aioredis.Redis, keys: Keys, pos: float) -> bool:
    raw = await r.hget(keys.token(TOKEN), "position")
    return raw is not None and abs(float(raw) - pos) < 1e-9


# --- auth -----------------------------------------------------------------------------------


async def test_every_api_route_needs_the_bearer_token(r: aioredis.Redis, keys: Keys) -> None:
    app = make_app(r, keys)
    async with client(app, auth=False) as http:
        spec = (await http.get("/openapi.json")).json()
        checked = 0
        for path, methods in spec["paths"].items():
            if not path.startswith("/api/"):
                continue
            url = path.replace("{token_id}", TOKEN).replace("{worker_id}", "w1").replace("{key}", "x")
            for method in methods:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
                    resp = await http.request(method.upper(), url, headers=headers, json={})
                    assert resp.status_code == 401, (method, path, headers, resp.text)
                    assert resp.headers["www-authenticate"] == "Bearer"
                checked += 1
        assert checked >= 20
        assert (await http.get("/healthz")).json() == {"ok": True}
        assert (await http.get("/")).status_code == 200  # the dashboard page itself holds no data
    assert await r.xlen(keys.control()) == 0  # nothing unauthenticated was written


async def test_the_api_refuses_to_start_without_a_token(r: aioredis.Redis, keys: Keys) -> None:
    from services.api.app import create_app
    from shared.config import Secrets

    with pytest.raises(ValueError, match="PF_API_TOKEN"):
        create_app(api_settings(), r, keys, Secrets())


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "body", "needle"), [
    ("POST", "/api/halt", {"mode": "everything"}, "mode"),
    ("POST", "/api/halt", {"mode": "halt", "colour": "red"}, "colour"),
    ("POST", "/api/tokens/bad%20id/stop", {}, "token_id"),
    ("POST", f"/api/tokens/{TOKEN}/stop", {"force": "maybe"}, "force"),
    ("POST", f"/api/tokens/{TOKEN}/stop", {"reason": "x" * 501}, "reason"),
    ("POST", "/api/blacklist", {"key": "re:([unclosed"}, "invalid regex"),
    ("POST", "/api/blacklist", {"key": "   "}, "key"),
    ("POST", "/api/blacklist", {"key": "ok", "ttl_sec": -1}, "ttl_sec"),
    ("POST", "/api/handled/reset", {}, "either token_id or all"),
    ("POST", "/api/handled/reset", {"token_id": TOKEN, "all": True}, "either token_id or all"),
    ("GET", "/api/events?count=0", None, "count"),
    ("GET", "/api/events?count=5000", None, "count"),
    ("GET", "/api/events?before=yesterday", None, "before"),
    ("GET", "/api/events?level=loud", None, "level"),
    ("GET", "/api/tokens?state=sleeping", None, "unknown state"),
    ("POST", "/api/workers/w%201/drain", {}, "worker_id"),
    ("POST", "/api/leaders/0xnope/pause", {}, "account"),
])
async def test_bad_input_is_a_clear_4xx_and_writes_nothing(r: aioredis.Redis, keys: Keys, method: str, url: str,
                                                           body: object, needle: str) -> None:
    async with client(make_app(r, keys)) as http:
        resp = await http.request(method, url, json=body)
    assert resp.status_code == 422, resp.text
    assert needle in resp.text
    assert await r.xlen(keys.control()) == 0


async def test_unknown_token_is_404(r: aioredis.Redis, keys: Keys) -> None:
    async with client(make_app(r, keys)) as http:
        resp = await http.get("/api/tokens/999")
    assert resp.status_code == 404
    assert "unknown" in resp.json()["detail"]


# --- reads ----------------------------------------------------------------------------------


async def test_tokens_workers_and_pnl_reflect_what_the_orchestrator_wrote(r: aioredis.Redis, keys: Keys) -> None:
    await running_token(r, keys)
    async with client(make_app(r, keys)) as http:
        [tok] = (await http.get("/api/tokens")).json()
        assert (tok["token_id"], tok["state"], tok["owner"], tok["slug"]) == (TOKEN, "running", "w1", "will-it-rain")
        assert tok["position"] == pytest.approx(10.0)
        assert tok["avg_cost"] == pytest.approx(0.40)
        assert tok["mark"] == pytest.approx(0.50)
        assert tok["unrealized_pnl"] == pytest.approx(1.0)  # 10 x (0.50 - 0.40)
        assert (await http.get("/api/tokens?state=done")).json() == []

        detail = (await http.get(f"/api/tokens/{TOKEN}")).json()
        assert detail["params"]["maker_strategy"]["order_size"] > 0
        assert [e["kind"] for e in detail["events"]][-1] == "token.queued"  # newest first: queued is the oldest
        assert detail["handled"] is False

        [worker] = (await http.get("/api/workers")).json()
        assert (worker["worker_id"], worker["alive"], worker["assigned"]) == ("w1", True, 1)

        pnl = (await http.get("/api/pnl")).json()
        assert pnl["unrealized_pnl"] == pytest.approx(1.0)
        assert pnl["exposure"] == pytest.approx(4.0)
        assert len(pnl["series"]) == 1

        stats = (await http.get("/api/stats")).json()
        assert stats["tokens"]["running"] == 1
        assert stats["streams"]["fills"] == 1

        fills = (await http.get("/api/fills")).json()
        assert fills[0]["token_id"] == TOKEN
        assert fills[0]["side"] == "BUY"
        signals = (await http.get("/api/signals?side=BUY")).json()
        assert [s["token_id"] for s in signals] == [TOKEN]
        assert (await http.get("/api/signals?side=SELL")).json() == []


async def test_fleet_metrics_count_workers_by_lease_and_their_assigned_tokens(r: aioredis.Redis, keys: Keys,
                                                                             redis_server: RedisServer) -> None:
    await running_token(r, keys)  # w1: alive, one token assigned
    await register_worker(r, keys, "w2")
    await r.delete(keys.worker_lease("w2"))  # w2: registered, lease gone
    families = {f.name: f for f in FleetCollector(redis_server.url, keys).collect()}
    assert {s.labels["alive"]: s.value for s in families["polyfleet_workers"].samples} == {"true": 1, "false": 1}
    assert {s.labels["worker"]: s.value for s in families["polyfleet_worker_tokens"].samples} == {"w1": 1, "w2": 0}
    assert families["polyfleet_redis_up"].samples[0].value == 1


async def test_tokens_and_pnl_tell_pending_from_confirmed_and_drop_a_failed_trade(r: aioredis.Redis,
                                                                                   keys: Keys) -> None:
    await register_worker(r, keys)
    async with orchestrator_running(r), client(make_app(r, keys)) as http:
        await buy_signal(r, keys)
        await wait_for(lambda: _state(r, keys, "starting"))
        await started(r, keys, 1)
        await fill(r, keys, "BUY", 0.40, 10, n=1, trade="T1", status="MATCHED")
        await wait_for(lambda: _position(r, keys, 10.0))
        [tok] = (await http.get("/api/tokens")).json()
        assert (tok["position"], tok["position_confirmed"], tok["pending"], tok["pending_buy"]) == (10, 0, 10, 10)
        assert (tok["pending_notional"], tok["pending_trades"], tok["settled"]) == (pytest.approx(4.0), 1, False)
        [trade] = (await http.get(f"/api/tokens/{TOKEN}")).json()["trades"]
        assert (trade["trade_id"], trade["side"], trade["size"], trade["status"]) == ("T1", "BUY", 10, "MATCHED")
        pnl = (await http.get("/api/pnl")).json()
        assert (pnl["pending_notional"], pnl["pending_trades"]) == (pytest.approx(4.0), 1)
        assert pnl["tokens"][0]["pending"] == 10

        await trade_status(r, keys, "T1", "CONFIRMED")
        await fill(r, keys, "SELL", 0.50, 10, n=2, trade="T2", status="MATCHED")
        await wait_for(lambda: _position(r, keys, 0.0))
        [tok] = (await http.get("/api/tokens")).json()
        assert (tok["position"], tok["position_confirmed"], tok["pending"], tok["pending_sell"]) == (0, 10, -10, 10)
        assert (tok["realized_pnl"], tok["realized_pnl_confirmed"]) == (pytest.approx(1.0), 0.0)
        assert [p["realized_pnl"] for p in (await http.get("/api/pnl")).json()["series"]] == pytest.approx([0.0, 1.0])

        await trade_status(r, keys, "T2", "FAILED")
        await wait_for(lambda: _position(r, keys, 10.0))
        [tok] = (await http.get("/api/tokens")).json()
        assert (tok["position"], tok["position_confirmed"], tok["pending"], tok["failed_trades"]) == (10, 10, 0, 1)
        assert (tok["realized_pnl"], tok["settled"]) == (0.0, True)
        detail = (await http.get(f"/api/tokens/{TOKEN}")).json()
        assert {t["trade_id"]: t["status"] for t in detail["trades"]} == {"T1": "CONFIRMED", "T2": "FAILED"}
        assert "trade.failed" in [e["kind"] for e in detail["events"]]
        pnl = (await http.get("/api/pnl")).json()
        assert [p["realized_pnl"] for p in pnl["series"]] == [0.0]  # the failed sell never happened
        assert pnl["realized_pnl"] == 0.0


async def test_events_filter_and_page_backwards(r: aioredis.Redis, keys: Keys) -> None:
    await running_token(r, keys)
    async with client(make_app(r, keys)) as http:
        everything = (await http.get("/api/events?count=1000")).json()
        assert len(everything) >= 3
        first_page = (await http.get("/api/events?count=2")).json()
        assert [e["entry_id"] for e in first_page] == [e["entry_id"] for e in everything[:2]]
        second = (await http.get(f"/api/events?count=2&before={first_page[-1]['entry_id']}")).json()
        assert [e["entry_id"] for e in second] == [e["entry_id"] for e in everything[2:4]]
        tokens_only = (await http.get("/api/events?kind=token.&count=1000")).json()
        assert tokens_only
        assert all(e["kind"].startswith("token.") for e in tokens_only)
        assert isinstance(tokens_only[0]["detail"], dict)  # JSON text fields come back as JSON


async def test_opportunities_pass_through_whatever_the_scanner_wrote(r: aioredis.Redis, keys: Keys) -> None:
    await r.xadd(keys.opportunities(), {"type": "opportunity", "v": "1", "kind": "yes_no_sum", "edge": "0.021",
                                        "detail": json.dumps({"legs": 2})})
    async with client(make_app(r, keys)) as http:
        [opp] = (await http.get("/api/opportunities")).json()
    assert (opp["kind"], opp["edge"], opp["detail"]) == ("yes_no_sum", "0.021", {"legs": 2})


async def test_pnl_series_follows_realised_pnl_from_fills(r: aioredis.Redis, keys: Keys) -> None:
    await fill(r, keys, "BUY", 0.40, 10, n=1)
    await fill(r, keys, "SELL", 0.50, 5, n=2)
    await fill(r, keys, "SELL", 0.30, 5, n=3)
    async with client(make_app(r, keys)) as http:
        series = (await http.get("/api/pnl")).json()["series"]
    assert [p["realized_pnl"] for p in series] == pytest.approx([0.0, 0.5, 0.0])


async def test_pnl_series_reads_old_fills_and_skips_trade_statuses(r: aioredis.Redis, keys: Keys) -> None:
    # A v1 fill entry as older workers wrote it, then a v2 one, then a status entry on the same stream.
    await r.xadd(keys.fills(), {"type": "fill", "v": "1", "id": "old", "ts_event": "1", "ts_init": "1",
                                "producer": "w0", "token_id": TOKEN, "epoch": "1", "worker": "w0", "order_id": "o",
                                "side": "BUY", "price": "0.4", "size": "10", "fee": "0"})
    await fill(r, keys, "SELL", 0.50, 10, n=2, trade="T2", status="MATCHED")
    await trade_status(r, keys, "T2", "CONFIRMED")
    async with client(make_app(r, keys)) as http:
        series = (await http.get("/api/pnl")).json()["series"]
    assert [p["realized_pnl"] for p in series] == pytest.approx([0.0, 1.0])


async def test_config_is_the_effective_one_with_secrets_redacted(r: aioredis.Redis, keys: Keys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    secret_key = "0x" + "ab" * 32
    app = make_app(r, keys, api_settings(risk={"max_notional_total": 123.0}), private_key=secret_key)
    async with client(app) as http:
        resp = await http.get("/api/config")
    text = resp.text
    assert resp.json()["settings"]["risk"]["max_notional_total"] == 123.0
    assert resp.json()["secrets"] == {"private_key": True, "clob_api_key": False, "clob_api_secret": False,
                                      "clob_api_passphrase": False, "api_token": True, "alert_webhook_url": False,
                                      "polygon_rpc_url": False, "builder_api_key": False,
                                      "builder_api_secret": False, "builder_api_passphrase": False,
                                      "relayer_api_key": False, "relayer_api_key_address": False}
    assert secret_key not in text
    assert API_TOKEN not in text
    assert "hunter2" not in text
    assert resp.json()["redis_url"] == "redis://***@127.0.0.1:1/0"


# --- control --------------------------------------------------------------------------------


async def test_stop_without_an_orchestrator_is_accepted_but_not_applied(r: aioredis.Redis, keys: Keys) -> None:
    app = make_app(r, keys, api_settings(api={"control_wait_sec": 0.2}))
    async with client(app) as http:
        resp = await http.post(f"/api/tokens/{TOKEN}/stop", json={"force": True, "reason": "fat finger"})
    assert resp.status_code == 202
    assert resp.json()["applied"] is False
    [(entry_id, fields)] = await r.xrange(keys.control())
    assert entry_id == resp.json()["entry_id"]
    req = decode(fields)
    assert (req.action, req.target, req.force, req.reason, req.producer) == (  # type: ignore[attr-defined]
        "stop_token", TOKEN, True, "fat finger", "api")


async def test_stop_reaches_the_orchestrator_and_the_token_exits(r: aioredis.Redis, keys: Keys) -> None:
    await running_token(r, keys)
    async with orchestrator_running(r), client(make_app(r, keys)) as http:
        resp = await http.post(f"/api/tokens/{TOKEN}/stop", json={"reason": "from the API"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["applied"] is True
        assert await r.hget(keys.token(TOKEN), "state") == "exiting"
    kinds = {f["kind"]: f for _, f in await r.xrange(keys.events())}
    assert kinds["control.stop_token"]["reason"] == "from the API"


async def test_halt_resume_blacklist_handled_drain_through_the_orchestrator(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w2")
    async with orchestrator_running(r), client(make_app(r, keys)) as http:
        assert (await http.post("/api/halt", json={"mode": "reduce_only", "reason": "drill"})).status_code == 200
        assert (await http.get("/api/halt")).json() == {"halt": "reduce_only"}
        assert (await http.post("/api/resume", json={})).status_code == 200
        assert (await http.get("/api/halt")).json() == {"halt": "off"}

        resp = await http.post("/api/blacklist", json={"key": "kw:election", "reason": "noisy", "ttl_sec": 60})
        assert resp.status_code == 200, resp.text
        [entry] = (await http.get("/api/blacklist")).json()["runtime"]
        assert (entry["key"], entry["reason"], entry["expired"]) == ("kw:election", "noisy", False)
        assert entry["expires_at"] > 0
        assert (await http.delete("/api/blacklist/kw:election?reason=done")).status_code == 200
        assert (await http.get("/api/blacklist")).json()["runtime"] == []

        await r.sadd(keys.handled(), TOKEN)
        assert (await http.post("/api/handled/reset", json={"token_id": TOKEN})).status_code == 200
        assert not await r.sismember(keys.handled(), TOKEN)

        assert (await http.post("/api/workers/w2/drain", json={})).status_code == 200
        assert (await http.get("/api/workers")).json()[0]["draining"] is True
        assert (await http.post("/api/workers/w2/drain", json={"undo": True})).status_code == 200
        assert (await http.get("/api/workers")).json()[0]["draining"] is False
    kinds = [f["kind"] for _, f in await r.xrange(keys.events())]
    for action in ("halt", "resume", "blacklist_add", "blacklist_remove", "handled_reset", "drain_worker"):
        assert f"control.{action}" in kinds


async def test_leader_pause_and_resume_through_the_orchestrator(r: aioredis.Redis, keys: Keys) -> None:
    leader = "0x" + "ab" * 20
    async with orchestrator_running(r), client(make_app(r, keys)) as http:
        resp = await http.post(f"/api/leaders/{leader}/resume", json={})  # not paused: refused, nothing written
        assert resp.status_code == 404, resp.text
        assert "is not paused" in resp.json()["detail"]
        assert await r.xlen(keys.control()) == 0

        resp = await http.post(f"/api/leaders/{leader.upper().replace('0X', '0x')}/pause", json={"reason": "review"})
        assert resp.status_code == 200, resp.text
        [shown] = (await http.get("/api/leaders")).json()["leaders"]
        assert (shown["account"], shown["paused"]["reason"], shown["paused"]["by"]) == (leader, "review", "api")
        assert (await http.post(f"/api/leaders/{leader}/resume", json={})).status_code == 200
        assert (await http.get("/api/leaders")).json()["leaders"] == []
    kinds = [f["kind"] for _, f in await r.xrange(keys.events())]
    assert {"leader.paused", "leader.resumed", "control.leader_pause", "control.leader_resume"} <= set(kinds)


async def test_redis_down_is_a_503_not_a_crash(keys: Keys) -> None:
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.2)
    async with client(make_app(dead, keys)) as http:
        assert (await http.get("/healthz")).status_code == 503
        resp = await http.get("/api/tokens")
    assert resp.status_code == 503
    assert "Redis unavailable" in resp.json()["detail"]
    await dead.aclose()
