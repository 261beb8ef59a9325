"""RedeemerService: ``pf:redeemable`` in, redeems on the venue, ``Redemption`` reports out.

Every ``redeemer.check_interval_sec`` it reads the flagged positions, their tokens and where each
market's redemption stands (``pf:redeem:status``, shared/redemptions.py), asks :mod:`plan` which
conditions are due, and for each: reads the wallet's on-chain balance of every flagged token (what
the redeem will take), redeems the condition through the venue room's
:class:`~shared.venue.positions.Positions` (the SDK routes v1 markets to the collateral adapters,
v2 markets to the Router, and sends gasless through the relayer or as the EOA's own transaction),
and writes one ``Redemption`` per token to ``pf:redemptions``, in one transaction with the status
``redeemed``. The orchestrator books them and deletes the status; until it has, a market reported
is not redeemed again.

Each step of a redeem is written to its status first (``sent`` before the send), so a restart
knows what was in flight and keeps the backoff (``next_at``). A redeem refused, reverted or without
an outcome in time is retried with backoff (``redeem.failed`` on ``pf:events``); a setup fault (no
relayer key, ...) the same, said as ``redeem.setup_error`` with the fix. One of unknown outcome is
retried only after the balance says it did not land (:func:`plan.landed`: if it did, it is
reported from the balance read before it: ``redeem.landed``). ``pf:redeem:retry`` (an operator's
``polyfleet redemptions --retry``) makes a retryable one due at once. The venue account is opened
at the first redeem due, so a fleet with nothing to redeem never calls the venue from here. Paper
mode, or ``redeemer.enabled: false``: heartbeat only.
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

from services.redeemer.plan import Flagged, Redeem, after_failure, landed, may_try, outcome_unknown, plan
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.config import Settings, load_secrets
from shared.keys import STREAM_MAXLEN
from shared.messages import AuditEvent, Redemption, stable_id
from shared.redemptions import RedeemStatus, TokenShares
from shared.redisio.health import beat
from shared.redisio.streams import add_message
from shared.service import RedisService
from shared.venue.chain_reads import LEDGER, outcome_balances
from shared.venue.environment import VenueEnvironment, resolve_environment, with_rpc_secret
from shared.venue.errors import VenueAmbiguous, VenueError, VenueSetupError
from shared.venue.ids import outcome

if TYPE_CHECKING:
    from shared.venue.account import VenueAccount
    from shared.venue.positions import Positions

SERVICE = "redeemer"


@dataclass
class VenueSide:
    """The fleet's venue account, opened for redeeming."""

    account: VenueAccount
    env: VenueEnvironment
    positions: Positions
    wallet: str

    async def balances(self, rd: Redeem) -> dict[str, float]:
        """The wallet's on-chain balance of each flagged token (the chain, not the CLOB's index: what
        a redeem takes, and what says whether one of unknown outcome landed)."""
        ids = [outcome(f.token_id, f.market_version, rd.condition_id) for f in rd.tokens]
        got = await outcome_balances(self.env.url("rpc_url"), {s: self.env.address(a) for s, a in LEDGER.items()},
                                     self.wallet, ids)
        return {f.token_id: round(b, 6) for f, b in zip(rd.tokens, got, strict=True)}


class RedeemerService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.cfg = settings.redeemer
        self.producer = f"{SERVICE}:{instance}"
        self.backoff = Backoff(max_attempts=1_000_000, initial_backoff_sec=self.cfg.retry_initial_sec,
                               backoff_multiplier=2.0, max_backoff_sec=self.cfg.retry_max_sec, jitter_fraction=0.1)
        self.venue: VenueSide | None = None
        self.counts = {"checks": 0, "flagged": 0, "waiting": 0, "redeemed": 0, "redeem_errors": 0, "landed": 0}

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
        async with r.pipeline(transaction=False) as p:
            for f in flagged:
                p.hgetall(k.token(f.token_id))
            p.hgetall(k.redeem_status())
            p.hgetall(k.redeem_retry())
            *hashes, raw_status, asked = await p.execute()
        tokens = dict(zip([f.token_id for f in flagged], hashes, strict=True))
        statuses = {cid: RedeemStatus.parse(cid, raw) for cid, raw in raw_status.items()}
        now = now_ms()
        due, waiting = plan(flagged, tokens, now, int(self.cfg.settle_wait_sec * 1000))
        # The orchestrator deletes a booked market's status; one whose market is no longer flagged
        # at all is a leftover of that race (or of an entry removed by hand): it goes too.
        if stale := set(statuses) - {f.condition_id for f in flagged}:
            await r.hdel(k.redeem_status(), *stale)
            await r.hdel(k.redeem_retry(), *stale)
        await self._note_waiting(flagged, waiting, statuses, now)
        self.counts["flagged"], self.counts["waiting"] = len(flagged), len(waiting)
        self.counts["checks"] += 1
        redeemed = 0
        for rd in due:
            st = statuses.get(rd.condition_id)
            if may_try(st, int(asked.get(rd.condition_id) or 0), now_ms()):
                redeemed += await self.redeem(rd, st)
        return redeemed

    async def _note_waiting(self, flagged: list[Flagged], waiting: dict[str, str],
                            statuses: dict[str, RedeemStatus | None], now: int) -> None:
        """A market held back shows as ``waiting`` and why (written when that changes); one in a
        retryable state keeps it: its backoff and what is unknown about it still hold."""
        for f in flagged:
            st, why = statuses.get(f.condition_id), waiting.get(f.token_id)
            if why is None or (st is not None and st.state not in ("waiting", "due")):
                continue
            if st is None or (st.state, st.reason) != ("waiting", why):
                new = RedeemStatus(f.condition_id, "waiting", f.market_version,
                                   [TokenShares(g.token_id, g.won) for g in flagged if g.condition_id == f.condition_id],
                                   reason=why, updated_at=now)
                statuses[f.condition_id] = new
                await self._write(new)

    async def redeem(self, rd: Redeem, st: RedeemStatus | None = None) -> int:
        """Redeem one condition and report each of its flagged tokens; 1 when done, 0 when it did
        not finish (tried again after a backoff)."""
        cid, unknown, sent = rd.condition_id, outcome_unknown(st), False
        kept = {t.token_id: t.shares for t in st.tokens} if st else {}
        st = st or RedeemStatus(cid, "due")
        st.market_version, st.tried_at = rd.market_version, now_ms()
        st.tokens = [TokenShares(f.token_id, f.won, kept.get(f.token_id)) for f in rd.tokens]
        if st.state in ("waiting", "due"):  # shown while the account opens and the balances are read
            st.state, st.reason, st.updated_at = "due", "redeeming: reading the wallet's balances", st.tried_at
            await self._write(st)
        try:
            venue = await self._venue()
            st.wallet = venue.wallet
            held = await venue.balances(rd)
            if unknown and landed(st, held):
                self.counts["landed"] += 1
                await self._audit("redeem.landed", "warning", rd, f"the redeem of unknown outcome ({st.reason}) "
                                  "landed: the wallet holds none of the market now; reported, not sent again",
                                  {"shares": {t.token_id: t.shares for t in st.tokens}})
                await self._report(rd, st, {t.token_id: t.shares or 0.0 for t in st.tokens}, st.tx_hash)
                return 1
            for t in st.tokens:
                t.shares = held[t.token_id]
            st.state, st.reason, st.updated_at = "sent", "redeem sent, waiting for its outcome", now_ms()
            st.next_at = st.updated_at + int((self.cfg.receipt_timeout_sec + self.cfg.retry_initial_sec) * 1000)
            await self._write(st)
            sent = True
            tx = await venue.positions.redeem(cid, rd.market_version)
        except (VenueError, httpx.HTTPError, OSError) as exc:
            setup = isinstance(exc, VenueSetupError)
            # not sent this time, after one of unknown outcome: that one is still unknown
            state = ("setup_error" if setup else "unknown" if isinstance(exc, VenueAmbiguous) or (unknown and not sent)
                     else "failed")
            delay = after_failure(st, state, str(exc), now_ms(), self.backoff)
            await self._write(st)
            self.counts["redeem_errors"] += 1
            logger.log("ERROR" if setup else "WARNING", "redeem of {} not done ({}: {}); try {} again in {:.0f} s",
                       cid[:12], state, exc, st.attempts + 1, delay)
            await self._audit("redeem.setup_error" if setup else "redeem.failed", "error" if setup else "warning",
                              rd, str(exc), {"state": state, "attempts": st.attempts, "retry_in_sec": round(delay, 1),
                                             **({"fix": exc.fix} if isinstance(exc, VenueSetupError) else {})})
            return 0
        await self._report(rd, st, held, tx)
        logger.warning("redeemed {} ({} token(s), {}): tx {}", cid[:12], len(rd.tokens), rd.market_version, tx or "-")
        return 1

    async def _report(self, rd: Redeem, st: RedeemStatus, shares: dict[str, float], tx: str) -> None:
        """The status ``redeemed`` and one ``Redemption`` per token, in one transaction: the
        orchestrator deletes the status when it has booked them, so it must not be written after."""
        st.state, st.tx_hash, st.reason, st.updated_at = "redeemed", tx, "", now_ms()
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(self.keys.redeem_status(), rd.condition_id, st.to_json())
            for f in rd.tokens:
                held = round(shares[f.token_id], 6)
                msg = Redemption(id=stable_id("redemption", f.token_id, rd.condition_id), ts_event=now_ms(),
                                 ts_init=now_ms(), producer=self.producer, token_id=f.token_id,
                                 condition_id=rd.condition_id, won=f.won, shares=held, payout=held if f.won else 0.0,
                                 tx_hash=tx, market_version=rd.market_version)
                p.xadd(self.keys.redemptions(), msg.encode(), maxlen=STREAM_MAXLEN["redemptions"],  # type: ignore[arg-type]
                       approximate=True)
            await p.execute()
        self.counts["redeemed"] += 1

    async def _write(self, st: RedeemStatus) -> None:
        await self.redis.hset(self.keys.redeem_status(), st.condition_id, st.to_json())

    async def _venue(self) -> VenueSide:
        """The fleet's trading account, opened at the first redeem (a missing deposit wallet is
        created through the relayer, as every process holding the account does)."""
        if self.venue is None:
            from shared.venue.positions import Positions  # the SDK only when there is something to redeem
            from shared.venue.wallet_setup import open_trading_account

            secrets = load_secrets()
            env = with_rpc_secret(await resolve_environment(self.settings.polymarket, self.settings.mode), secrets)
            opened = await open_trading_account(self.settings, secrets, env)
            positions = Positions(opened.account.client, env.address("neg_risk_adapter"), self.cfg.receipt_timeout_sec)
            self.venue = VenueSide(opened.account, env, positions, opened.info.address)
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
