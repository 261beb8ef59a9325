"""``polyfleet doctor``: preflight of a deployment before it trades.

Checks, in order: configuration, Redis, the venue environment and its endpoints (Data API, Gamma,
CLOB, market websocket), clock drift against the CLOB's server time, then the wallet on the
official SDK: its kind and address, whether it is deployed, that the API key is bound to the
signer the orders carry, every approval the contracts in use need (shared/venue/approvals.py,
addresses from the environment) and the pUSD balance. In sim mode all of it runs against
sim_exchange (the environment points there). Each wrong setup is one line naming the fix.

The verdicts are pure functions of what was observed (tested without a network); :func:`run`
gathers the observations. Exit code: 0 when nothing failed (warnings allowed), 1 otherwise.
``polyfleet setup-wallet`` (:func:`setup_wallet`) fixes what can be fixed from here: it creates a
missing deposit wallet and sends the missing approvals.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

import httpx
import redis

from shared.config import ConfigError, Secrets, Settings, load_secrets, load_settings, redis_url
from shared.venue.approvals import ApprovalState
from shared.venue.environment import VenueEnvironment, resolve_environment, with_rpc_secret
from shared.venue.errors import VenueSetupError
from shared.venue.preflight import Observed, observe
from shared.venue.wallet_setup import SETUP_COMMAND, WalletInfo, key_binding_error, not_deployed_error

Status = Literal["ok", "warn", "fail"]
DRIFT_WARN_SEC, DRIFT_FAIL_SEC = 2.0, 30.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


# ------------------------------------------------------------------------------------ verdicts


def setup_failure(name: str, exc: VenueSetupError) -> Check:
    return Check(name, "fail", f"{exc.problem}; fix: {exc.fix}")


def wallet_check(info: WalletInfo) -> Check:
    return Check("wallet", "ok", info.describe())


def deployed_check(info: WalletInfo) -> Check:
    if info.kind == "eoa":
        return Check("wallet deployed", "ok", "an EOA needs no deployment (it pays its own gas in POL)")
    if info.deployed:
        return Check("wallet deployed", "ok", f"{info.address} is deployed (the relayer says so)")
    if info.kind == "deposit":
        return Check("wallet deployed", "warn", f"deposit wallet {info.address} is not deployed yet: every service "
                     f"creates it through the relayer at start, or run `{SETUP_COMMAND}` now")
    err = not_deployed_error(info)
    assert err is not None
    return setup_failure("wallet deployed", err)


def key_check(info: WalletInfo, given_key: str, used_key: str) -> Check:
    err = key_binding_error(given_key, used_key, info.signer)
    if err is not None:
        return setup_failure("api key", err)
    how = "PF_CLOB_API_KEY, accepted" if given_key else "derived from the key (L1)"
    carried = (f"; orders are signed by {info.signer} for the deposit wallet {info.address} (signature type 3)"
               if info.kind == "deposit" else f"; orders carry signer {info.signer}, maker {info.address}")
    return Check("api key", "ok", f"{how}: bound to signer {info.signer}{carried}")


def approval_checks(states: list[ApprovalState], wallet: str) -> list[Check]:
    """One line per approval the contracts in use need."""
    out = []
    for st in states:
        a = st.approval
        name = f"approval {a.token_name} -> {a.spender_name}"
        if st.ok:
            out.append(Check(name, "ok", f"{a.spender} ({a.purpose})"))
        else:
            have = f" (allowance {st.value / 1e6:,.2f})" if a.standard == "ERC20" and st.value else ""
            out.append(Check(name, "fail", f"{wallet} lacks the {a.label} {a.spender}{have}, needed for {a.purpose}; "
                             f"fix: `{SETUP_COMMAND}`"))
    return out


def balance_check(balance: float | None, mode: str) -> Check:
    """pUSD the CLOB sees for the wallet (None: the wallet does not exist yet)."""
    if balance is None:
        return Check("collateral", "warn", f"no wallet yet, so no pUSD; deposit once `{SETUP_COMMAND}` created it")
    if balance > 0:
        return Check("collateral", "ok", f"{balance:,.2f} pUSD available")
    return Check("collateral", "warn" if mode == "sim" else "fail",
                 "0.00 pUSD available: nothing to trade with; fix: deposit pUSD to the wallet")


def drift_check(server_sec: float, local_sec: float) -> Check:
    drift = local_sec - server_sec
    text = f"local clock {drift:+.2f}s from the CLOB's"
    if abs(drift) > DRIFT_FAIL_SEC:
        return Check("clock", "fail", text + ": fix NTP, signed requests and order expiries depend on it")
    if abs(drift) > DRIFT_WARN_SEC:
        return Check("clock", "warn", text + " (more than 2 s: check NTP)")
    return Check("clock", "ok", text)


# ------------------------------------------------------------------------------------ gathering


def _http(name: str, url: str, client: httpx.Client) -> Check:
    try:
        resp = client.get(url)
    except httpx.HTTPError as exc:
        return Check(name, "fail", f"{url}: {type(exc).__name__}: {exc}")
    if resp.status_code >= 500:
        return Check(name, "fail", f"{url}: HTTP {resp.status_code}")
    return Check(name, "ok", f"{url}: HTTP {resp.status_code} in {resp.elapsed.total_seconds() * 1000:.0f} ms")


def _websocket(url: str) -> Check:
    import websockets

    async def probe() -> None:
        async with websockets.connect(url, open_timeout=5, close_timeout=2):
            pass

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to open is the finding
        return Check("market websocket", "fail", f"{url}: {type(exc).__name__}: {exc}")
    return Check("market websocket", "ok", f"{url}: connected")


def _redis() -> list[Check]:
    url = redis_url()
    safe = url.split("@", 1)[1] if "@" in url else url
    try:
        r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=3, socket_connect_timeout=3)
        info = r.info("server")
        out = [Check("redis", "ok", f"{safe}: Redis {info.get('redis_version')}")]
    except (redis.RedisError, OSError) as exc:
        return [Check("redis", "fail", f"{safe}: {exc} (set PF_REDIS_URL)")]
    try:
        aof = r.config_get("appendonly").get("appendonly")
        out.append(Check("redis persistence", "ok" if aof == "yes" else "warn",
                         "append-only file on" if aof == "yes" else
                         "appendonly is off: a Redis restart loses lifecycle state (redis-server --appendonly yes)"))
    except redis.RedisError:
        out.append(Check("redis persistence", "warn", "CONFIG GET is not allowed here; cannot tell"))
    r.close()
    return out


def venue_checks(seen: Observed, mode: str) -> list[Check]:
    """The wallet's lines from what :func:`shared.venue.preflight.observe` saw."""
    out = [setup_failure(name, exc) for name, exc in seen.setup_errors]
    info = seen.info
    if info is not None:
        out += [wallet_check(info), deployed_check(info)]
        if seen.used_key is not None:
            out.append(key_check(info, seen.given_key, seen.used_key))
        if not any(name == "collateral" for name, _ in seen.problems):
            out.append(balance_check(seen.balance if info.deployed else None, mode))
        out += approval_checks(seen.approvals, info.address)
    out += [Check(name, "fail", text) for name, text in seen.problems]
    return out


def _venue(settings: Settings, secrets: Secrets, env: VenueEnvironment) -> list[Check]:
    return venue_checks(asyncio.run(observe(settings, secrets, with_rpc_secret(env, secrets))), settings.mode)


def run(config_path: str | None = None) -> list[Check]:
    checks: list[Check] = []
    try:
        settings = load_settings(config_path)
        secrets = load_secrets()
    except ConfigError as exc:
        return [Check("config", "fail", str(exc))]
    checks.append(Check("config", "ok", f"mode {settings.mode}, {len(settings.copytrade.targets)} target(s)"))
    if settings.mode != "sim" and not secrets.private_key:
        checks.append(Check("secrets", "fail", f"mode {settings.mode} needs PF_PRIVATE_KEY (or PF_PRIVATE_KEY_FILE)"))
    checks.extend(_redis())
    try:
        env = asyncio.run(resolve_environment(settings.polymarket, settings.mode))
    except (ConnectionError, ValueError) as exc:
        return [*checks, Check("environment", "fail", str(exc))]
    checks.append(Check("environment", "ok", f"{env.name}: chain {env.chain_id}, CLOB {env.url('clob_url')}"))
    clob_url = env.url("clob_url")
    with httpx.Client(timeout=5) as http:
        checks.append(_http("data api", f"{env.url('data_url')}/trades?limit=1", http))
        checks.append(_http("gamma", f"{env.url('gamma_url')}/markets/keyset?limit=1", http))  # venue.md G1
        checks.append(_http("clob", f"{clob_url}/ok", http))
        try:
            before = time.time()
            resp = http.get(f"{clob_url}/time")
            local = (before + time.time()) / 2
            server = float(resp.text.strip().strip('"'))
            # /time answers whole seconds: its true value lies within the next second
            checks.append(drift_check(server + 0.5 if server.is_integer() else server, local))
        except (httpx.HTTPError, ValueError) as exc:
            checks.append(Check("clock", "fail", f"{clob_url}/time: {exc}"))
    checks.append(_websocket(env.url("clob_market_ws_url")))
    if not any(c.status == "fail" and c.name == "clob" for c in checks):
        checks.extend(_venue(settings, secrets, env))
    return checks
