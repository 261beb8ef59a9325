"""RedeemerService: ``pf:redeemable`` in, redeems on the venue, ``Redemption`` reports out.

Every ``redeemer.check_interval_sec`` it reads the flagged positions and their tokens, asks
:mod:`plan` which conditions are due, and for each: reads the wallet's balance of every flagged
token (what the redeem will take), redeems the condition through the venue room's
:class:`~shared.venue.positions.Positions` (the SDK routes v1 markets to the collateral adapters,
v2 markets to the Router, and sends gasless through the relayer or as the EOA's own transaction),
and writes one ``Redemption`` per token to ``pf:redemptions``. The orchestrator books them and
removes the entries; until it has, a condition reported is not redeemed again.

A redeem refused, reverted or without an outcome in time is retried with backoff
(``redeem.failed`` on ``pf:events``); a setup fault (no relayer key, ...) the same, said as
``redeem.setup_error`` with the fix. The venue account is opened at the first redeem due, so a
fleet with nothing to redeem never calls the venue from here. Paper mode, or
``redeemer.enabled: false``: heartbeat only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.redeemer.plan import Flagged, Redeem, Retries, plan
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.config import Settings, load_secrets
from shared.keys import STREAM_MAXLEN
from shared.messages import AuditEvent, Redemption, stable_id
from shared.redisio.health import beat
from shared.redisio.streams import add_message
from shared.service import RedisService
from shared.venue.environment import resolve_environment, with_rpc_secret
from shared.venue.errors import VenueError, VenueSetupError
from shared.venue.ids import outcome

if TYPE_CHECKING:
    from shared.venue.account import VenueAccount
    from shared.venue.orders import VenueOrders
    from shared.venue.positions import Positions

SERVICE = "redeemer"


@dataclass
class VenueSide:
    """The fleet's venue account, opened for redeeming."""

    account: VenueAccount
    orders: VenueOrders
    positions: Positions
    wallet: str


class RedeemerService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.cfg = settings.redeemer
        self.producer = f"{SERVICE}:{instance}"
        self.retries = Retries(Backoff(max_attempts=1_000_000, initial_backoff_sec=self.cfg.retry_initial_sec,
                                       backoff_multiplier=2.0, max_backoff_sec=self.cfg.retry_max_sec,
                                       jitter_fraction=0.1))
        self.reported: set[str] = set()  # conditions redeemed and reported, not booked by the orchestrator yet
        self.venue: VenueSide | None = None
        self.counts = {"flagged": 0, "waiting": 0, "redeemed": 0, "redeem_errors": 0}

    @property
    def idle(self) -> bool:
        return not self.cfg.enabled or self.settings.mode == "paper"

    async def run(self) -> None:
        await self.connect_redis()
        try:
            if self.idle:
                logger.info("redeemer idles ({}): heartbeat only",
                            "paper mode" if self.settings.mode == "paper" else "redeemer.enabled is false")
            pace = min(self.cfg.check_interval_sec, self.settings.monitoring.heartbeat_interval_sec)
            last_check = -float("inf")
            while not self.stopping:
                now = asyncio.get_running_loop().time()
                if not self.idle and now - last_check >= self.cfg.check_interval_sec:
                    last_check = now
                    try:
                        await self.step()
                    except (RedisError, OSError) as exc:
                        logger.warning("redeemer: Redis error {}; retrying", exc)
                    except Exception:  # a fault of ours: the loop outlives one bad check, the next retries
                        logger.exception("redeemer: check failed")
                await self._beat()
                await self.sleep_unless_stopped(pace)
        finally:
            if self.venue is not None:
                await self.venue.account.close()
            await self.close_redis()

    async def step(self) -> int:
        """One look at ``pf:redeemable``: redeem what is due; the number of conditions redeemed."""
        r, k = self.redis, self.keys
        flagged: list[Flagged] = []
        for token_id, raw in (await r.hgetall(k.redeemable())).items():
            f = Flagged.parse(token_id, raw)
            if f is None:
                logger.error("the redeemable entry of {} cannot be read: {!r}", token_id, raw)
            else:
                flagged.append(f)
        self.reported &= {f.condition_id for f in flagged}  # booked ones are gone from pf:redeemable
        async with r.pipeline(transaction=False) as p:
            for f in flagged:
                p.hgetall(k.token(f.token_id))
            tokens = dict(zip([f.token_id for f in flagged], await p.execute(), strict=True))
        due, waiting = plan(flagged, tokens, now_ms(), int(self.cfg.settle_wait_sec * 1000))
        self.counts["flagged"], self.counts["waiting"] = len(flagged), len(waiting)
        redeemed = 0
        now = asyncio.get_running_loop().time()
        for rd in due:
            if rd.condition_id not in self.reported and self.retries.due(rd.condition_id, now):
                redeemed += await self.redeem(rd)
        return redeemed

    async def redeem(self, rd: Redeem) -> int:
        """Redeem one condition and report each of its flagged tokens; 1 when done, 0 when it failed
        (tried again after a backoff)."""
        cid = rd.condition_id
        try:
            venue = await self._venue()
            held = {f.token_id: await venue.orders.position(outcome(f.token_id, f.market_version, cid))
                    for f in rd.tokens}
            tx = await venue.positions.redeem(cid, rd.market_version)
        except (VenueError, httpx.HTTPError, OSError) as exc:
            attempts, delay = self.retries.failed(cid, asyncio.get_running_loop().time())
            self.counts["redeem_errors"] += 1
            setup = isinstance(exc, VenueSetupError)
            logger.log("ERROR" if setup else "WARNING", "redeem of {} not done ({}); try {} again in {:.0f} s",
                       cid[:12], exc, attempts + 1, delay)
            await self._audit("redeem.setup_error" if setup else "redeem.failed", "error" if setup else "warning",
                              rd, str(exc), {"attempts": attempts, "retry_in_sec": round(delay, 1),
                                             **({"fix": exc.fix} if isinstance(exc, VenueSetupError) else {})})
            return 0
        self.retries.done(cid)
        for f in rd.tokens:
            shares = round(held[f.token_id], 6)
            msg = Redemption(id=stable_id("redemption", f.token_id, cid), ts_event=now_ms(), ts_init=now_ms(),
                             producer=self.producer, token_id=f.token_id, condition_id=cid, won=f.won, shares=shares,
                             payout=shares if f.won else 0.0, tx_hash=tx, market_version=rd.market_version)
            await add_message(self.redis, self.keys.redemptions(), msg, STREAM_MAXLEN["redemptions"])
        self.reported.add(cid)
        self.counts["redeemed"] += 1
        logger.warning("redeemed {} ({} token(s), {}): tx {}", cid[:12], len(rd.tokens), rd.market_version, tx or "-")
        return 1

    async def _venue(self) -> VenueSide:
        """The fleet's trading account, opened at the first redeem (a missing deposit wallet is
        created through the relayer, as every process holding the account does)."""
        if self.venue is None:
            from shared.venue.orders import VenueOrders  # the SDK only when there is something to redeem
            from shared.venue.positions import Positions
            from shared.venue.wallet_setup import open_trading_account

            secrets = load_secrets()
            env = with_rpc_secret(await resolve_environment(self.settings.polymarket, self.settings.mode), secrets)
            opened = await open_trading_account(self.settings, secrets, env)
            positions = Positions(opened.account.client, env.address("neg_risk_adapter"), self.cfg.receipt_timeout_sec)
            self.venue = VenueSide(opened.account, VenueOrders(opened.account), positions, opened.info.address)
            logger.info("redeemer: redeeming for {}", opened.info.describe())
        return self.venue

    async def _audit(self, kind: str, level: str, rd: Redeem, reason: str, detail: dict[str, Any]) -> None:
        msg = AuditEvent(id=stable_id(SERVICE, kind, rd.condition_id, now_ms()), ts_event=now_ms(), ts_init=now_ms(),
                         producer=self.producer, kind=kind, level=level,  # type: ignore[arg-type]
                         token_id=rd.tokens[0].token_id, reason=reason,
                         detail={"condition_id": rd.condition_id, "tokens": [f.token_id for f in rd.tokens],
                                 "market_version": rd.market_version, **detail})
        await add_message(self.redis, self.keys.events(), msg, STREAM_MAXLEN["events"])

    async def _beat(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await beat(self.redis, self.keys, SERVICE, self.instance, self.settings.monitoring.heartbeat_interval_sec,
                       {"state": "idle" if self.idle else "running", **self.counts,
                        "wallet": self.venue.wallet if self.venue else ""})
