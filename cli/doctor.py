"""``polyfleet doctor``: preflight of a deployment before it trades.

Checks, in order: configuration, Redis, every Polymarket endpoint (Data API, Gamma, CLOB, market
websocket), clock drift against the CLOB's server time, the wallet (signer, signature type and
funder: the most common confusion in Polymarket bots), API credentials, and the collateral
balance with every allowance the V2 exchanges and the neg-risk adapter need. In sim mode all of
it runs against sim_exchange (the URLs in the config point there).

The verdicts are pure functions of what was observed (tested without a network); :func:`run`
gathers the observations. Exit code: 0 when nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import redis

from shared.config import ConfigError, Secrets, Settings, load_secrets, load_settings, redis_url
from shared.venue.environment import VenueEnvironment, resolve_environment

Status = Literal["ok", "warn", "fail"]

# Spenders a V2 trader must approve (docs/operations.md "doctor"; reference: contract addresses).
REQUIRED_SPENDERS = {
    "0xE111180000d2663C0091e4f400237545B87B996B": "CTF Exchange V2",
    "0xe2222d279d744050d28e00520010520000310F59": "Neg Risk CTF Exchange V2",
    "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296": "Neg Risk Adapter",
}
SIGNATURE_TYPES = {0: "EOA", 1: "POLY_PROXY (email/Magic)", 2: "GNOSIS_SAFE (browser wallet)", 3: "POLY_1271"}
DRIFT_WARN_SEC, DRIFT_FAIL_SEC = 2.0, 30.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


# ------------------------------------------------------------------------------------ verdicts


def wallet_check(signer: str, signature_type: int, funder: str) -> Check:
    kind = SIGNATURE_TYPES.get(signature_type, f"unknown ({signature_type})")
    if signature_type not in SIGNATURE_TYPES:
        return Check("wallet", "fail", f"signature type {signature_type} is not one of 0-3")
    if signature_type == 0:
        if funder and funder.lower() != signer.lower():
            return Check("wallet", "fail", f"an EOA wallet signs for the key's own address {signer}, but "
                         f"polymarket.wallet_address is {funder}: for a proxy/Safe wallet set polymarket.wallet "
                         "to proxy or safe; for an EOA leave wallet_address empty")
        return Check("wallet", "ok", f"signer {signer}, signature type 0 (EOA), funds held by the signer")
    if not funder:
        return Check("wallet", "fail", f"signature_type {signature_type} ({kind}) needs polymarket.wallet_address = "
                     "the wallet that holds the funds (the profile's address on polymarket.com)")
    if funder.lower() == signer.lower():
        return Check("wallet", "fail", f"signature_type {signature_type} ({kind}) but the wallet is the signer itself "
                     f"({signer}): the funder must be the proxy wallet, or use signature_type 0")
    return Check("wallet", "ok", f"signer {signer}, signature type {signature_type} ({kind}), funder {funder}")


def drift_check(server_sec: float, local_sec: float) -> Check:
    drift = local_sec - server_sec
    text = f"local clock {drift:+.2f}s from the CLOB's"
    if abs(drift) > DRIFT_FAIL_SEC:
        return Check("clock", "fail", text + ": fix NTP, signed requests and order expiries depend on it")
    if abs(drift) > DRIFT_WARN_SEC:
        return Check("clock", "warn", text + " (more than 2 s: check NTP)")
    return Check("clock", "ok", text)


def balance_checks(reply: dict[str, Any], mode: str) -> list[Check]:
    """Collateral balance and allowances from ``GET /balance-allowance`` (6-decimal integer strings)."""
    try:
        balance = int(str(reply.get("balance", "0"))) / 1e6
    except ValueError:
        return [Check("collateral", "fail", f"unreadable balance reply: {reply!r}")]
    out = [Check("collateral", "ok" if balance > 0 else ("warn" if mode == "sim" else "fail"),
                 f"{balance:,.2f} pUSD available" + ("" if balance > 0 else ": nothing to trade with"))]
    allowances = {k.lower(): v for k, v in (reply.get("allowances") or {}).items()}
    for address, label in REQUIRED_SPENDERS.items():
        raw = allowances.get(address.lower())
        try:
            amount = int(str(raw)) / 1e6 if raw is not None else 0.0
        except ValueError:
            amount = 0.0
        if raw is None or amount <= 0:
            out.append(Check(f"allowance {label}", "fail", f"no pUSD allowance for {label} {address}: approve it "
                             "(orders fail with 'not enough balance / allowance')"))
        elif amount < balance:
            out.append(Check(f"allowance {label}", "warn", f"allowance {amount:,.2f} is below the balance {balance:,.2f}"))
        else:
            out.append(Check(f"allowance {label}", "ok", "unlimited" if amount > 1e30 else f"{amount:,.2f}"))
    return out


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


def _clob(settings: Settings, secrets: Secrets, env: VenueEnvironment) -> list[Check]:
    from py_clob_client_v2.clob_types import AssetType, BalanceAllowanceParams

    from shared.venue.clob import SIGNATURE_TYPES, make_clob_client

    out: list[Check] = []
    try:
        client = make_clob_client(settings, secrets, env)
    except ConfigError as exc:
        return [Check("credentials", "fail", str(exc))]
    except Exception as exc:
        return [Check("credentials", "fail", f"could not create or derive CLOB API credentials: {exc}")]
    signature_type = SIGNATURE_TYPES[settings.polymarket.wallet]
    out.append(wallet_check(client.get_address(), signature_type, settings.polymarket.wallet_address))
    try:
        client.get_api_keys()
        how = "from PF_CLOB_API_KEY" if secrets.clob_api_key else "derived from the key (L1)"
        out.append(Check("credentials", "ok", f"API credentials {how} accepted"))
    except Exception as exc:
        out.append(Check("credentials", "fail", f"API credentials refused: {exc}"))
        return out
    try:
        reply = client.get_balance_allowance(BalanceAllowanceParams(
            asset_type=AssetType.COLLATERAL, signature_type=signature_type))  # type: ignore[arg-type]
    except Exception as exc:
        return [*out, Check("collateral", "fail", f"balance-allowance failed: {exc}")]
    return out + balance_checks(reply if isinstance(reply, dict) else {}, settings.mode)


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
        checks.extend(_clob(settings, secrets, env))
    return checks
