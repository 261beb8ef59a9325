"""AlerterService: events (group ``alerter`` on ``pf:events``) and periodic worker/gateway checks
in, webhook POSTs out. Every alert is also logged (WARNING), so alerts are visible without a
webhook; ``alerts.enabled`` with no ``PF_ALERT_WEBHOOK_URL`` refuses to start."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis.asyncio as aioredis
from loguru import logger
from prometheus_client import Counter
from redis.exceptions import RedisError

from services.alerter.rules import (
    Alert,
    FeedWatch,
    GatewayWatch,
    RejectionRate,
    Throttle,
    WorkerWatch,
    from_event,
    payload,
)
from shared.clock import now_ms
from shared.config import ConfigError, Settings, load_secrets
from shared.fleet import queue_worker_reads, worker_views
from shared.keys import GROUP_ALERTER, REQUESTER_ORCHESTRATOR
from shared.messages import AuditEvent
from shared.redisio import StreamConsumer
from shared.redisio.health import beat, healthy_instances
from shared.service import RedisService

SERVICE = "alerter"
SEND_ATTEMPTS = 3
ALERTS = Counter("polyfleet_alerts", "Alerts by kind and outcome (sent, suppressed, failed, logged)",
                 ("kind", "outcome"))


class AlerterService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, instance, redis)
        cfg = settings.alerts
        self.url = load_secrets().alert_webhook_url
        if cfg.enabled and not self.url:
            raise ConfigError("alerts.enabled is true but PF_ALERT_WEBHOOK_URL is not set (env or _FILE)")
        if cfg.enabled and cfg.format == "telegram" and not cfg.telegram_chat_id:
            raise ConfigError("alerts.format is telegram but alerts.telegram_chat_id is empty")
        self.throttle = Throttle(int(cfg.dedup_sec * 1000), cfg.max_per_minute)
        self.rejections = RejectionRate(cfg.rejections_per_minute)
        self.workers = WorkerWatch()
        self.gateway = GatewayWatch(int(cfg.gateway_stall_sec * 1000))
        self.feed = FeedWatch(int(cfg.gateway_silent_sec * 1000))
        self._http = http
        self._last_check = 0.0
        self.counts = {"sent": 0, "suppressed": 0, "failed": 0, "events": 0}
        self.consumer: StreamConsumer | None = None

    async def run(self) -> None:
        await self.connect_redis()
        try:
            await self.setup()
            logger.info("alerter: webhook {} ({} format)", "on" if self.settings.alerts.enabled else "off (log only)",
                        self.settings.alerts.format)
            last_beat = 0.0
            while not self.stopping:
                await self.step()
                if time.monotonic() - last_beat >= self.settings.monitoring.heartbeat_interval_sec:
                    last_beat = time.monotonic()
                    await beat(self.redis, self.keys, SERVICE, self.instance,
                               self.settings.monitoring.heartbeat_interval_sec, dict(self.counts))
        finally:
            if self._http is not None:
                await self._http.aclose()
            await self.close_redis()

    async def setup(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.alerts.send_timeout_sec)
        # "$": a new group starts at the end, so a first start does not alert on the past.
        self.consumer = StreamConsumer(self.redis, [self.keys.events()], GROUP_ALERTER, self.instance,
                                       start_id="$")
        await self.consumer.ensure_groups()

    async def step(self, block_ms: int = 500) -> None:
        if self.consumer is None:
            await self.setup()
        assert self.consumer is not None
        try:
            for entry in await self.consumer.read(count=200, block_ms=block_ms):
                if isinstance(entry.message, AuditEvent):
                    self.counts["events"] += 1
                    for alert in self.evaluate(entry.message):
                        await self.emit(alert)
                await self.consumer.ack(entry.stream, entry.entry_id)
            if time.monotonic() - self._last_check >= self.settings.alerts.check_interval_sec:
                self._last_check = time.monotonic()
                for alert in await self.check_fleet():
                    await self.emit(alert)
        except (RedisError, OSError) as exc:
            logger.warning("alerter: Redis error {}; retrying", exc)
            await self.sleep_unless_stopped(1.0)

    def evaluate(self, ev: AuditEvent) -> list[Alert]:
        fields = {"kind": ev.kind, "level": ev.level, "token_id": ev.token_id, "reason": ev.reason,
                  "detail": ev.detail}
        ts = ev.ts_init or now_ms()
        return [a for a in (from_event(fields, ts), self.rejections.observe(fields, ts)) if a is not None]

    async def check_fleet(self) -> list[Alert]:
        k = self.keys
        ids = sorted(await self.redis.smembers(k.workers()))
        pipe = self.redis.pipeline(transaction=False)
        for wid in ids:
            queue_worker_reads(pipe, k, wid)
        pipe.scard(k.gw_want(REQUESTER_ORCHESTRATOR))
        pipe.exists(k.gw_alive())
        rows = await pipe.execute()
        ts = now_ms()
        out = self.workers.observe({w.worker_id: (w.alive, w.assigned) for w in worker_views(ids, rows)}, ts)
        wanted, alive = int(rows[-2]), rows[-1] == 1
        gateways = await healthy_instances(self.redis, k, "ws_gateway")
        frames = sum(float(b.get("frames_per_sec") or 0) for b in gateways)
        feed = self.feed.observe(wanted, alive and bool(gateways), frames, ts)
        stall = self.gateway.observe(wanted, alive, ts)
        return out + [a for a in (stall, feed) if a is not None]

    async def emit(self, alert: Alert) -> None:
        if not self.throttle.allow(alert):
            self.counts["suppressed"] += 1
            ALERTS.labels(alert.kind, "suppressed").inc()
            return
        logger.warning("ALERT {} [{}] {}", alert.kind, alert.severity, alert.text)
        cfg = self.settings.alerts
        if not cfg.enabled:
            ALERTS.labels(alert.kind, "logged").inc()
            return
        body = payload(alert, cfg.format, self.keys.ns, cfg.telegram_chat_id, self.throttle.take_suppressed())
        if await self._post(body):
            self.counts["sent"] += 1
            ALERTS.labels(alert.kind, "sent").inc()
        else:
            self.counts["failed"] += 1
            ALERTS.labels(alert.kind, "failed").inc()

    async def _post(self, body: dict[str, Any]) -> bool:
        assert self._http is not None
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                resp = await self._http.post(self.url, json=body)
                if resp.status_code < 300:
                    return True
                # the URL may hold a bot token: log the status, never the URL
                logger.warning("alert webhook answered {} (attempt {}/{})", resp.status_code, attempt, SEND_ATTEMPTS)
                if 400 <= resp.status_code < 500 and resp.status_code != 429:
                    return False
            except httpx.HTTPError as exc:
                logger.warning("alert webhook failed: {} (attempt {}/{})", type(exc).__name__, attempt, SEND_ATTEMPTS)
            if await self.sleep_unless_stopped(0.5 * attempt):
                return False
        logger.error("alert not delivered after {} attempts: {}", SEND_ATTEMPTS, body.get("text"))
        return False
