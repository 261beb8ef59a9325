"""The collector's sources against a real redis-server and a real sim_exchange process (A1-A8).

Bursts across pages and equal seconds, look-back, the live-data socket merged with the poller,
silent lapses, config reload, 429 storms, malformed rows, the market screen and token metadata.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually, running, write_config
from harness.streams import read_messages
from services.signal_collector.service import SignalCollectorService
from shared.config import load_settings
from shared.keys import Keys
from shared.messages import AuditEvent, Signal
from tests.integration.collector_support import signals

W1 = "0x1111111111111111111111111111111111111111"
W2 = "0x2222222222222222222222222222222222222222"
W3 = "0x3333333333333333333333333333333333333333"


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim()


@pytest.fixture
def markets(sim: SimExchangeProcess) -> list[dict[str, Any]]:
    """The sim's v1 (CTF) markets: the collector reads clobTokenIds only until it knows v2 markets."""
    data: list[dict[str, Any]] = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()
    return [m for m in data if m["version"] == "v1"]


@pytest.fixture
def token(markets: list[dict[str, Any]]) -> str:
    return str(markets[0]["tokens"][0]["token_id"])


@pytest.fixture(autouse=True)
def _namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")


def config(tmp_path: Path, sim: SimExchangeProcess, copytrade: dict[str, Any], **more: Any) -> Path:
    return write_config(tmp_path / "polyfleet.yaml", sim.port, {"copytrade": copytrade, **more})


def post(sim: SimExchangeProcess, path: str, body: Any) -> Any:
    resp = httpx.post(f"{sim.url}{path}", json=body, timeout=30)
    resp.raise_for_status()
    return resp.json()


def trade(wallet: str, token: str, size: float = 10, side: str = "BUY", **kw: Any) -> dict[str, Any]:
    return {"proxyWallet": wallet, "side": side, "asset": token, "size": size, "price": 0.42, **kw}


async def test_lookback_opt_in_takes_recent_history_only(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str) -> None:
    now = int(time.time())
    post(sim, "/_sim/trades", [trade(W1, token, 11, timestamp=now - 1000), trade(W1, token, 12, timestamp=now - 120)])
    settings = load_settings(config(tmp_path, sim, {"initial_lookback_sec": 300, "targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        assert await svc.step() == 1
        assert [s.size for s in await signals(r, keys)] == [12.0]
    finally:
        await svc.aclose()


async def test_burst_of_250_across_pages_and_equal_seconds_gives_exactly_250(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str) -> None:
    settings = load_settings(config(tmp_path, sim, {"page_size": 7, "targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        await svc.step()  # first run: cursor at now
        second = int(time.time()) + 1
        post(sim, "/_sim/burst", {"wallet": W1, "token": token, "count": 120, "same_tx": True, "timestamp": second})
        assert await svc.step() == 120  # 18 pages, one transaction, one second
        # the same second gets 130 more fills (another transaction) after the cursor reached it
        post(sim, "/_sim/burst", {"wallet": W1, "token": token, "count": 130, "timestamp": second})
        assert await svc.step() == 130
        assert await svc.step() == 0
        got = await signals(r, keys)
        assert len(got) == 250
        assert len({s.id for s in got}) == 250
        assert {s.ts_event for s in got} == {second * 1000}
        assert svc.counters.polls >= 4
    finally:
        await svc.aclose()


async def test_backlog_deeper_than_the_offset_cap_is_read_in_time_windows(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str) -> None:
    now = int(time.time())
    post(sim, "/_sim/burst", {"wallet": W1, "token": token, "count": 10_700, "same_second": False,
                              "timestamp": now - 500, "spread_sec": 400})
    settings = load_settings(config(tmp_path, sim, {"initial_lookback_sec": 600, "page_size": 1000,
                                                    "targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        assert await svc.step() == 10_700  # an offset-only reader stops at 11,000 rows max and loses none here
        # but only because the window moved: the rows past offset 10,000 came from a second window
        got = await signals(r, keys)
        assert len({s.id for s in got}) == len(got) == 10_700
        assert [s.ts_event for s in got] == sorted(s.ts_event for s in got)  # oldest first
    finally:
        await svc.aclose()


async def test_same_trade_from_live_data_and_poller_is_one_signal(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str) -> None:
    settings = load_settings(config(tmp_path, sim, {"rtds_enabled": True, "poll_interval_sec": 0.3,
                                                    "targets": [{"account": W1, "min_size": 5}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    async with running(svc):
        await eventually(lambda: _connected(svc), what="live-data connected")
        await eventually(lambda: r.exists(keys.cursor(W1)), what="first poll")
        stored = post(sim, "/_sim/trades", [trade(W1, token, 20), trade(W1, token, 1), trade(W2, token, 30)])
        got = await eventually(lambda: _n_signals(r, keys, 1), what="signal")
        ts = stored[0]["timestamp"]

        async def poller_passed() -> bool:
            cur = await r.hgetall(keys.cursor(W1))
            return int(cur["ts"]) >= ts and svc.counters.polls > 2
        await eventually(poller_passed, what="poller past the trade")
        polls = svc.counters.polls
        # both sources past it: the other source's copy (and the orders_matched twin) dropped, two
        # more polls re-read the overlap, so a late repeat would be on the stream by now
        await eventually(lambda: _true(svc.counters.duplicates_dropped >= 2 and svc.counters.polls >= polls + 2),
                         what="both sources past the trade")
        got = await signals(r, keys)
        # One signal, whichever source saw the trade first (the live frame, unless a loaded machine
        # delays it past the 0.3 s poll); the other source's copies are dropped as repeats.
        assert [(s.size, s.account) for s in got] == [(20.0, W1)]
        assert got[0].source in ("rtds", "poll")
        assert svc.counters.duplicates_dropped >= 2  # trades + orders_matched frames, or the poll
        assert got[0].tx_hash == stored[0]["transactionHash"].lower()
        if got[0].source == "rtds":
            assert svc.latency.summary()["rtds.process"]["n"] == 1

        # the live feed lapses for this trade's types: the poller, still on, catches it
        post(sim, "/_sim/fault", {"kind": "rtds_lapse", "mode": "mute", "seconds": 5})
        post(sim, "/_sim/trades", [trade(W1, token, 33, side="SELL")])
        got = await eventually(lambda: _n_signals(r, keys, 2), what="poller backstop")
        assert [(s.source, s.side, s.size) for s in got][1] == ("poll", "SELL", 33.0)


async def _connected(svc: SignalCollectorService) -> bool:
    return svc.live is not None and svc.live.connected


async def _n_signals(r: aioredis.Redis, keys: Keys, n: int) -> list[Signal] | None:
    got = await signals(r, keys)
    return got if len(got) >= n else None


async def test_silent_live_data_socket_is_replaced_and_flows_again(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str) -> None:
    settings = load_settings(config(tmp_path, sim, {
        "rtds_enabled": True, "poll_interval_sec": 120,  # the poller polls once: this is the socket's test
        "rtds_silence_sec": 1.0, "rtds_ping_interval_sec": 0.3, "targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    async with running(svc):
        await eventually(lambda: _connected(svc), what="live-data connected")
        await eventually(lambda: r.exists(keys.cursor(W1)), what="first poll")
        # the socket freezes: open, answering pings, delivering nothing, resubscribing included
        # (docs/venue.md L2); only a new socket gets the trades again
        lapsed = post(sim, "/_sim/fault", {"kind": "rtds_lapse", "mode": "silent"})
        assert lapsed["affected"] == 1
        assert svc.live is not None
        live = svc.live
        await eventually(lambda: _true(live.counters.silent_reconnects >= 1 and live.counters.connects >= 2
                                       and live.connected), timeout=10, what="a new socket")
        post(sim, "/_sim/trades", [trade(W1, token, 15)])
        got = await eventually(lambda: _n_signals(r, keys, 1), what="signal on the new socket")
        assert got[0].source == "rtds"
        # a dropped socket is reconnected
        connects = live.counters.connects
        post(sim, "/_sim/fault", {"kind": "rtds_drop"})
        await eventually(lambda: _true(live.counters.connects > connects and live.connected), what="reconnect")
        post(sim, "/_sim/trades", [trade(W1, token, 16)])
        got = await eventually(lambda: _n_signals(r, keys, 2), what="signal after reconnecting")
        assert [s.source for s in got] == ["rtds", "rtds"]


async def _true(value: bool) -> bool:
    return value


async def test_config_reload_stops_disabled_starts_new_and_keeps_the_last_good_config(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, sim, {"poll_interval_sec": 0.2, "targets": [
        {"account": W1}, {"account": W2, "enabled": False}]}, config_reload_sec=0.3)
    monkeypatch.setenv("PF_CONFIG", str(path))
    svc = SignalCollectorService(load_settings(path), "t", redis=r)
    async with running(svc):
        await eventually(lambda: r.exists(keys.cursor(W1)), what="first poll")
        post(sim, "/_sim/trades", [trade(W1, token, 1), trade(W2, token, 2, timestamp=int(time.time()) - 5)])
        await eventually(lambda: _n_signals(r, keys, 1), what="W1 signal")
        w1_cursor = await r.hgetall(keys.cursor(W1))

        config(tmp_path, sim, {"poll_interval_sec": 0.2, "targets": [
            {"account": W1, "enabled": False}, {"account": W2}, {"account": W3}]}, config_reload_sec=0.3)
        await eventually(lambda: _true(svc.reloader.reloads == 1), what="reload")
        await eventually(lambda: r.exists(keys.cursor(W3)), what="new target polled")
        post(sim, "/_sim/trades", [trade(W1, token, 3), trade(W2, token, 4), trade(W3, token, 5)])
        got = await eventually(lambda: _n_signals(r, keys, 3), what="W2 and W3 signals")
        polls = svc.counters.polls  # two more rounds of every target: a late signal would be in by then
        await eventually(lambda: _true(svc.counters.polls >= polls + 6), what="two more poll rounds")
        got = await signals(r, keys)
        # W2 never had a cursor: enabled now, it starts at "now" (its older trade is history)
        assert sorted((s.account, s.size) for s in got) == [(W1, 1.0), (W2, 4.0), (W3, 5.0)]
        assert await r.hgetall(keys.cursor(W1)) == w1_cursor  # the disabled target's cursor is kept

        reloaded = [m for m in await _events(r, keys) if m.kind == "config.reloaded"]
        assert reloaded[0].detail == {"path": str(path), "added": [W3], "disabled": [W1], "enabled": [W2]}

        path.write_text("copytrade: {targets: [{account: nope}]}\n")
        invalid = await eventually(lambda: _events_of(r, keys, "config.invalid"), what="invalid config event")
        assert invalid[0].level == "error"
        assert "copytrade.targets.0" in invalid[0].reason
        post(sim, "/_sim/trades", [trade(W3, token, 6)])
        await eventually(lambda: _n_signals(r, keys, 4), what="the last good config still runs")
        assert svc.reloader.invalid == 1


async def _events(r: aioredis.Redis, keys: Keys) -> list[AuditEvent]:
    return await read_messages(r, keys.events(), AuditEvent)


async def _events_of(r: aioredis.Redis, keys: Keys, kind: str) -> list[AuditEvent]:
    return [e for e in await _events(r, keys) if e.kind == kind]


async def test_429_and_503_storms_are_ridden_out_for_many_targets(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str) -> None:
    wallets = [f"0x{i:040x}" for i in range(1, 21)]
    settings = load_settings(config(tmp_path, sim, {"poll_interval_sec": 0.2, "targets": [
        {"account": w} for w in wallets]}, retry_strategy={"initial_backoff_sec": 0.1,
                                                           "max_backoff_sec": 3}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    await svc.step()  # cursors at now
    post(sim, "/_sim/fault", {"kind": "http_429", "count": 25, "retry_after": 1, "path_prefix": "/data-api"})
    post(sim, "/_sim/fault", {"kind": "http_429", "count": 5, "retry_after": 1, "path_prefix": "/data-api",
                              "status": 503})
    post(sim, "/_sim/trades", [trade(w, token, 7) for w in wallets])
    started = time.monotonic()
    async with running(svc):
        await eventually(lambda: _n_signals(r, keys, 20), timeout=30, what="every target's signal")
    assert time.monotonic() - started >= 1.0  # Retry-After held everyone back
    got = await signals(r, keys)
    assert sorted(s.account for s in got) == wallets
    assert 1 <= svc.counters.http_errors <= 30
    assert svc.budget.paused_for() < 3.5


async def test_malformed_rows_are_skipped_and_counted_and_the_loop_goes_on(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, token: str) -> None:
    settings = load_settings(config(tmp_path, sim, {"targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        await svc.step()
        ts = int(time.time()) + 1
        good = post(sim, "/_sim/trades", [trade(W1, token, 9, timestamp=ts)])[0]
        bad_rows = [{**good, "size": "lots", "transactionHash": "0x01"}, {**good, "asset": None},
                    {**good, "side": "HOLD"}, {**good, "price": 7}, {"proxyWallet": W1, "timestamp": ts}]
        post(sim, "/_sim/raw-trades", bad_rows)
        assert await svc.step() == 1
        assert svc.counters.malformed == 5
        post(sim, "/_sim/trades", [trade(W1, token, 10, timestamp=ts + 1)])
        assert await svc.step() == 1  # the loop goes on; bad rows are counted each time they are read
        assert [s.size for s in await signals(r, keys)] == [9.0, 10.0]
    finally:
        await svc.aclose()


async def test_signals_carry_token_metadata_cached_once_in_redis(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, markets: list[dict[str, Any]],
        token: str) -> None:
    settings = load_settings(config(tmp_path, sim, {"targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        await svc.step()
        post(sim, "/_sim/trades", [trade(W1, token, 9), trade(W1, token, 8)])
        assert await svc.step() == 2
        got = await signals(r, keys)
        sibling = markets[0]["tokens"][1]["token_id"]
        assert {(s.tick_size, s.neg_risk, s.min_order_size, s.sibling_token) for s in got} == {
            (0.01, False, 5.0, sibling)}
        assert got[0].end_date
        assert got[0].end_date.endswith("Z")
        meta = await r.hgetall(keys.meta(token))
        assert (meta["outcome"], meta["sibling_token"], meta["question"]) == ("Yes", sibling, markets[0]["question"])
        assert await r.hgetall(keys.meta(sibling))  # the whole market was cached at once
        assert svc.meta.fetches == 1
    finally:
        await svc.aclose()


async def test_a_burst_of_new_tokens_is_looked_up_in_one_gamma_request(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, markets: list[dict[str, Any]]) -> None:
    settings = load_settings(config(tmp_path, sim, {"targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        await svc.step()
        tokens = [m["tokens"][0]["token_id"] for m in markets[:3]]
        assert len(set(tokens)) == 3
        post(sim, "/_sim/trades", [trade(W1, t, 5 + i) for i, t in enumerate(tokens)])
        assert await svc.step() == 3
        got = {s.token_id: s for s in await signals(r, keys)}
        assert {t: got[t].sibling_token for t in tokens} == {m["tokens"][0]["token_id"]: m["tokens"][1]["token_id"]
                                                             for m in markets[:3]}
        assert svc.meta.fetches == 1  # one request for the three, not one each
        assert svc.meta.misses == 0
    finally:
        await svc.aclose()


async def test_market_screen_emits_each_new_candidate_once(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path,
        markets: list[dict[str, Any]]) -> None:
    settings = load_settings(config(tmp_path, sim, {"targets": []}, screen={
        "enabled": True, "min_volume": 10_000_000, "min_price": 0.05, "max_price": 0.95,
        "keyword_blacklist": ["bitcoin"], "end_within_hours": 24 * 365}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        from services.signal_collector.screener import ScreenSource
        gamma_url = (await svc.venue()).url("gamma_url")
        screen = ScreenSource(svc._http_client(), svc.meta, svc.writer, svc.latency, lambda: svc.settings, gamma_url)
        assert await screen.step() == 0
        assert screen.rejected["volume"] == len(markets) or sum(screen.rejected.values()) == 0
        m = markets[1]
        resp = httpx.patch(f"{sim.url}/_sim/gamma/{m['gamma_id']}", json={"volumeNum": 20_000_000,
                                                                         "outcomePrices": ["0.30", "0.70"]}, timeout=5)
        resp.raise_for_status()
        assert resp.json()["volume"] == "20000000"
        assert await screen.step() == 2
        assert await screen.step() == 0  # signalled once
        got = await signals(r, keys)
        assert {(s.source, s.side, s.token_id, s.price) for s in got} == {
            ("screen", "BUY", m["tokens"][0]["token_id"], 0.3), ("screen", "BUY", m["tokens"][1]["token_id"], 0.7)}
        assert all(s.slug == m["slug"] and s.tick_size == m["tokens"][0]["tick_size"] for s in got)
        assert {s.market_version for s in got} == {m["version"]}
        assert await r.hgetall(keys.meta(m["tokens"][0]["token_id"]))
        httpx.patch(f"{sim.url}/_sim/gamma/{markets[2]['gamma_id']}",
                    json={"volumeNum": 30_000_000, "question": "Will Bitcoin close above 100k?"}, timeout=5)
        assert await screen.step() == 0
        assert screen.rejected["keyword"] == 1
    finally:
        await svc.aclose()


async def test_signals_of_both_market_systems_carry_their_version_and_gamma_minimum(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path) -> None:
    # a v2 market has positionIds, no clobTokenIds: its metadata is found by position_ids
    # (docs/venue.md V1, G3) and its signals say v2, so the session signs for the right exchange
    every: list[dict[str, Any]] = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()
    v1 = next(m for m in every if m["version"] == "v1" and not m["neg_risk"])
    v2 = next(m for m in every if m["version"] == "v2")
    settings = load_settings(config(tmp_path, sim, {"targets": [{"account": W1}]}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        await svc.step()
        post(sim, "/_sim/trades", [trade(W1, v1["tokens"][0]["token_id"], 9), trade(W1, v2["tokens"][1]["token_id"], 8)])
        assert await svc.step() == 2
        got = {s.token_id: s for s in await signals(r, keys)}
        new, old = got[v2["tokens"][1]["token_id"]], got[v1["tokens"][0]["token_id"]]
        assert (new.market_version, new.condition_id, new.sibling_token, new.min_order_size) == (
            "v2", v2["condition_id"], v2["tokens"][0]["token_id"], v2["tokens"][1]["min_size"])
        assert (old.market_version, old.min_order_size) == ("v1", v1["tokens"][0]["min_size"])
        assert (await r.hgetall(keys.meta(v2["tokens"][0]["token_id"])))["version"] == "v2"  # type: ignore[misc]
        assert svc.meta.fetches == 2  # one keyset query per id kind: clob_token_ids, position_ids
        assert svc.meta.misses == 0
    finally:
        await svc.aclose()


async def test_the_screen_reads_v2_markets_from_the_keyset_and_says_so(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path) -> None:
    v2 = next(m for m in httpx.get(f"{sim.url}/_sim/markets", timeout=5).json() if m["version"] == "v2")
    httpx.patch(f"{sim.url}/_sim/gamma/{v2['gamma_id']}", json={"volumeNum": 20_000_000}, timeout=5).raise_for_status()
    settings = load_settings(config(tmp_path, sim, {"targets": []}, screen={
        "enabled": True, "min_volume": 10_000_000, "min_price": 0.0, "max_price": 1.0,
        "end_within_hours": 24 * 365}), {})
    svc = SignalCollectorService(settings, "t", redis=r)
    try:
        from services.signal_collector.screener import ScreenSource
        gamma_url = (await svc.venue()).url("gamma_url")
        screen = ScreenSource(svc._http_client(), svc.meta, svc.writer, svc.latency, lambda: svc.settings, gamma_url)
        assert await screen.step() == 2
        got = await signals(r, keys)
        assert {(s.token_id, s.market_version) for s in got} == {(t["token_id"], "v2") for t in v2["tokens"]}
        assert (await r.hgetall(keys.meta(v2["tokens"][0]["token_id"])))["version"] == "v2"  # type: ignore[misc]
    finally:
        await svc.aclose()


def test_health_summary_is_json(tmp_path: Path) -> None:
    svc = SignalCollectorService(load_settings(tmp_path / "none.yaml", {}), "t")
    assert json.loads(json.dumps(svc.summary()))["targets"] == 0
