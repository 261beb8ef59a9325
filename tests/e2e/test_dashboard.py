"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium)
against the whole sim system as processes: the page shows live data (the leader scorecard with
the leader's own venue PnL and volume and a chart per leader, a pending redemption), the what-if
panel backtests the leader, and a Stop click reaches the orchestrator. A screenshot is saved
under var/test-artifacts/ (CI keeps it)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import redis.asyncio as aioredis
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from harness import ROOT, RedisServer, ServiceProcess, SimExchangeProcess, eventually, free_port
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import AuditEvent, Fill, TradeStatus
from shared.redisio import add_message
from shared.redisio.health import healthy_instances

pytestmark = pytest.mark.e2e

WALLET = "0xfeed000000000000000000000000000000000002"
WORKER = "worker-dash"
API_TOKEN = "dash-token-5f1e2d3c"
SERVICES = ("signal_collector", "ws_gateway", "orchestrator", "maker_worker", "api")
ARTIFACTS = ROOT / "var" / "test-artifacts"
T = TypeVar("T")


def chrome() -> WebDriver:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        raise RuntimeError("the dashboard test needs Debian's chromium and chromedriver: "
                           "apt-get install -y chromium chromium-driver (`make test` installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1600", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


@pytest.fixture
def system(start_sim: Callable[..., SimExchangeProcess], redis_server: RedisServer,
           tmp_path: Path) -> Iterator[tuple[SimExchangeProcess, dict[str, ServiceProcess], int]]:
    api_port = free_port()
    sim = start_sim({
        "sim_exchange": {"markets": 2, "volatility": 0.0},
        "copytrade": {"targets": [{"account": WALLET, "min_size": 1}], "poll_interval_sec": 0.3,
                      "value_refresh_sec": 0.5, "backtest": {"delay_sec": 0, "slippage_bps": 0}},
        "maker_strategy": {"order_size": 10, "drop_pct": 0},
        "cooldown": {"cooldown_sec_per_token": 0},
        "scheduler": {"poll_interval_sec": 0.2},
        "api": {"port": api_port, "control_wait_sec": 5},
    })
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf",
           "PF_API_TOKEN": API_TOKEN}
    procs = {name: ServiceProcess(name, {**env, "PF_INSTANCE": WORKER if name == "maker_worker" else name}, tmp_path)
             for name in SERVICES}
    for proc in procs.values():
        proc.start()
    yield sim, procs, api_port
    for proc in procs.values():
        proc.stop()


async def test_dashboard_shows_live_data_and_its_stop_button_reaches_the_orchestrator(
        system: tuple[SimExchangeProcess, dict[str, ServiceProcess], int], r: aioredis.Redis, keys: Keys) -> None:
    sim, procs, api_port = system
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = chrome()
    try:
        await _flow(sim, r, keys, api_port, browser)
    except (AssertionError, WebDriverException) as exc:
        browser.save_screenshot(str(ARTIFACTS / "dashboard-failure.png"))
        logs = "\n".join(f"===== {p.name}\n{p.log()[-3000:]}" for p in procs.values())
        raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        browser.quit()
    for name, proc in procs.items():
        assert proc.alive(), f"{name} died:\n{proc.log()[-3000:]}"


async def _flow(sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, api_port: int, browser: WebDriver) -> None:
    for name in SERVICES:
        await eventually(lambda n=name: healthy_instances(r, keys, n), timeout=30, what=f"{name} heartbeat")
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as http:
        markets = (await http.get("/_sim/markets")).json()
        rows = markets["markets"] if isinstance(markets, dict) else markets
        tok = (rows[0].get("tokens") or rows[0].get("token_ids") or rows[0].get("clobTokenIds"))[0]
        token = str(tok["token_id"] if isinstance(tok, dict) else tok)
        book = {"bids": [{"price": "0.48", "size": "500"}], "asks": [{"price": "0.50", "size": "500"}]}
        assert (await http.put(f"/_sim/book/{token}", json=book)).status_code == 200
        resp = await http.post("/_sim/trades", json={"proxyWallet": WALLET, "side": "BUY", "asset": token,
                                                     "size": 25, "price": 0.5})
        assert resp.status_code == 200, resp.text

    # The page, with the token in the fragment (it never reaches a server log).
    browser.get(f"http://127.0.0.1:{api_port}/#token={API_TOKEN}")
    row = f'#tokens tr[data-token="{token}"]'

    async def running_row() -> bool:
        return _read(browser, row, lambda e: e.get_attribute("data-state")) == "running"

    await eventually(running_row, timeout=40, what="token row in state running on the page")
    assert browser.find_element(By.ID, "conn").text == "live"  # the websocket is connected
    assert "#token" not in browser.current_url  # the token was taken out of the address bar

    async def bought() -> bool:
        return _read(browser, f"{row} td:nth-child(5)", lambda e: e.text) == "10.00"

    await eventually(bought, timeout=20, what="position 10 shown")

    # A fill whose trade is still settling shows in the pending column; its trade failing takes it
    # away again (the sim's worker path settles at once, so this one is written here).
    epoch = int(await r.hget(keys.token(token), "epoch"))
    common = {"ts_event": now_ms(), "ts_init": now_ms(), "producer": WORKER, "token_id": token, "epoch": epoch,
              "worker": WORKER}
    await add_message(r, keys.fills(), Fill(id="dash-fill", **common, order_id="dash-order", side="BUY", price=0.5,
                                            size=5, trade_id="dash-trade", status="MATCHED"))
    cells = (f"{row} td:nth-child(5)", f"{row} td:nth-child(6)")

    async def shown(position: str, pending: str) -> bool:
        return [_read(browser, c, lambda e: e.text) for c in cells] == [position, pending]

    await eventually(lambda: shown("15.00", "+5.00 \u29D7"), timeout=15, what="pending +5 shown")
    assert "pending" in (_read(browser, cells[1], lambda e: e.get_attribute("class")) or "")
    await add_message(r, keys.fills(), TradeStatus(id="dash-failed", **common, trade_id="dash-trade", status="FAILED"))
    await eventually(lambda: shown("10.00", ""), timeout=15, what="the failed trade voided on the page")

    # Events written while the page's websocket is down show once it is back (the server pushes only
    # what comes after it connects; the page loads the rest again on its "hello").
    browser.execute_script("state.ws.close()")
    await eventually(lambda: _aread(browser, "#conn", lambda e: e.text == "offline"), timeout=5, what="socket down")
    await add_message(r, keys.events(), AuditEvent(id="dash-gap", ts_event=now_ms(), ts_init=now_ms(), producer="test",
                                                   kind="test.while_offline", reason="written while offline"))
    await eventually(lambda: _aread(browser, "#events", lambda e: "test.while_offline" in e.text), timeout=10,
                     what="the event written while the socket was down")
    worker_row = await eventually(
        lambda: _aread(browser, '#workers tr[data-worker="worker-dash"]', lambda e: e.text), timeout=5, what="worker row")
    assert worker_row.startswith(WORKER)
    assert "token.running" in browser.find_element(By.ID, "events").text
    stats = browser.find_element(By.ID, "stats").text
    assert "WORKERS ALIVE" in stats.upper()
    assert "1/1" in stats
    await eventually(lambda: _has(browser, "#pnl-chart polyline"), timeout=15, what="PnL chart line")
    await eventually(lambda: _has(browser, "#ticks-chart polyline"), timeout=15, what="ticks/s chart line")

    # The leader scorecard: the page reads it every 30 s; the test asks for it at once.
    leader = f'#leaders tr[data-account="{WALLET}"]'

    async def scored() -> list[str | None]:
        browser.execute_script("refreshLeaders()")
        return [_read(browser, f"{leader} td:nth-child({i})", lambda e: e.text) for i in (2, 3, 6, 12)]

    await eventually(lambda: _until(scored, ["yes", "poll 1", "1", "copyable"]), timeout=10,
                     what="the followed wallet's scorecard row: one signal, one copy")
    # ... with its chart: the copied PnL over its one copy, a line from $0
    chart = f'{leader} svg[data-testid="leader-chart"]'
    assert _read(browser, chart, lambda e: e.get_attribute("data-points")) == "1"
    assert await _has(browser, f"{chart} polyline")

    # A redemption of unknown outcome shows with its retry (the redeemer's status entry, as it writes
    # it; no redeemer runs here, so it stays put).
    cid = "0x" + "5e" * 32
    await r.hset(keys.redeem_status(), cid, json.dumps({
        "state": "unknown", "attempts": 1, "reason": "redeem: outcome unknown, no outcome within 60 s",
        "tokens": [{"token_id": token, "won": True, "shares": 10.0}], "next_at": now_ms() + 60_000}))
    redemption = f'#redemptions tr[data-condition="{cid}"]'

    async def redemption_shown() -> bool:
        browser.execute_script("refreshRedemptions()")
        return (_read(browser, redemption, lambda e: e.get_attribute("data-state")) == "unknown"
                and await _has(browser, f'[data-testid="redeem-retry-{cid}"]'))

    await eventually(redemption_shown, timeout=10, what="the redemption of unknown outcome and its Retry button")
    # its own venue PnL / volume: the collector reads the sim's Data API every value_refresh_sec (25 x 0.50)
    await eventually(lambda: _aread(browser, f"{leader} td:nth-child(5)", lambda e: e.text.endswith(" / 13")),
                     timeout=10, what="the leader's venue volume $13 on its row")

    # What if: the leader's trade of the last day replayed through today's rules (fixed 10 shares)
    browser.find_element(By.ID, "whatif-address").send_keys(WALLET)
    days = browser.find_element(By.ID, "whatif-days")
    days.clear()
    days.send_keys("1")
    browser.find_element(By.ID, "whatif-run").click()
    figure = '#whatif-result tr[data-figure="{}"] td'
    await eventually(lambda: _aread(browser, figure.format("copies made"), lambda e: e.text == "1"), timeout=15,
                     what="the what-if result: one copy made")
    assert _read(browser, figure.format("trades replayed"), lambda e: e.text) == "1 (1 buys, 0 sells; 0 below min_size)"
    assert _read(browser, figure.format("invested $"), lambda e: e.text) == "5.00"  # 10 at the leader's 0.50
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    # Stop: the first click arms the button, the second sends the request. The table is rebuilt on
    # every update, so each step finds the button afresh; the armed state survives a rebuild.
    stop = f'[data-testid="stop-{token}"]'
    await eventually(lambda: _aclick(browser, stop), timeout=5, what="first click on Stop")
    await eventually(lambda: _aread(browser, stop, lambda e: "Confirm" in e.text), timeout=2, what="Stop armed")
    await eventually(lambda: _aclick(browser, stop), timeout=2, what="confirming click on Stop")

    async def stop_applied() -> dict[str, str] | None:
        return next((f for _, f in await r.xrange(keys.events())
                     if f["kind"] == "control.stop_token" and f["token_id"] == token), None)

    event = await eventually(stop_applied, timeout=15, what="control.stop_token event from the orchestrator")
    assert event["reason"] == "stopped from the dashboard"
    assert '"requested_by":"api"' in event["detail"]
    [(_, req)] = [(i, f) for i, f in await r.xrange(keys.control()) if f["target"] == token]
    assert (req["action"], req["producer"]) == ("stop_token", "api")

    async def leaves_running() -> bool:
        state = await r.hget(keys.token(token), "state")
        shown = _read(browser, row, lambda e: e.get_attribute("data-state"))
        return state in ("exiting", "done") and shown in ("exiting", "done")

    await eventually(leaves_running, timeout=30, what="token exiting/done in Redis and on the page")
    time.sleep(0.5)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-after-stop.png"))


async def _until(read: Callable[[], Awaitable[T]], want: T) -> bool:
    return await read() == want


async def _has(browser: WebDriver, css: str) -> bool:
    return bool(browser.find_elements(By.CSS_SELECTOR, css))


def _read(browser: WebDriver, css: str, get: Callable[[WebElement], T]) -> T | None:
    """``get`` of the first element matching ``css``, or None when there is none or the page rebuilt it
    between the find and the read (the dashboard replaces its table rows on every update)."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        return get(found[0]) if found else None
    except StaleElementReferenceException:
        return None


async def _aread(browser: WebDriver, css: str, get: Callable[[WebElement], T]) -> T | None:
    return _read(browser, css, get)


async def _aclick(browser: WebDriver, css: str) -> bool:
    """Click the element once; False (try again) when it is missing or was rebuilt before the click
    reached it: selenium refuses a stale element before clicking, so a retry never double-clicks."""
    def click(e: WebElement) -> bool:
        e.click()
        return True
    return _read(browser, css, click) or False
