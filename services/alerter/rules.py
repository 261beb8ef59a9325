"""Which situations raise an alert, how often, and what the webhook receives (pure).

Alerts (``kind``, severity):

| kind | from | severity |
|---|---|---|
| ``halt`` | a ``control.halt`` event (kill switch set by an operator) | critical (warning for reduce_only) |
| ``daily_loss`` | ``risk.daily_loss_limit`` (the orchestrator set reduce_only) | critical |
| ``risk_rejections`` | ``rejections_per_minute`` or more ``token.rejected`` events within 60 s | warning |
| ``venue_heartbeat`` | a ``worker.heartbeat_failing`` event: the worker's order heartbeats failed near the venue's deadline and it stopped placing orders (none during the venue's engine restart, 425) | critical |
| ``worker_dead`` | a ``worker.dead`` event, or a registered worker's lease disappeared while it held tokens or was alive before | critical |
| ``gateway_stall`` | tokens are wanted but no gateway has published liveness for ``gateway_stall_sec`` | critical |
| ``gateway_silent`` | a gateway is alive and tokens are wanted, but no market frame arrived for ``gateway_silent_sec`` | warning |
| ``leader_paused`` | a ``leader.paused`` event: auto-demotion (or an operator) paused a followed wallet; its BUYs are no longer copied | warning |
| ``error_event`` | any other event at level ``error`` (short position, config invalid, token error) | warning |

Every alert has a ``key`` (kind + subject); :class:`Throttle` sends the same key at most once
per ``dedup_sec`` and all alerts together at most ``max_per_minute`` per minute, counting what
it suppressed so the next alert that goes out says so.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Alert:
    kind: str
    subject: str
    severity: Severity
    text: str
    ts_ms: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


def from_event(fields: dict[str, Any], ts_ms: int) -> Alert | None:
    """The alert an audit event raises by itself, if any (rejection rates are counted apart)."""
    kind, reason, token = str(fields.get("kind", "")), str(fields.get("reason", "")), str(fields.get("token_id", ""))
    raw_detail = fields.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    if kind == "control.halt":
        mode = str(detail.get("target") or "halt")
        who = detail.get("requested_by") or "?"
        return Alert("halt", mode, "warning" if mode == "reduce_only" else "critical",
                     f"Kill switch set to {mode} by {who}" + (f": {reason}" if reason else ""), ts_ms)
    if kind == "risk.daily_loss_limit":
        return Alert("daily_loss", "today", "critical", f"Daily loss limit reached: {reason}", ts_ms)
    if kind == "token.rejected":
        return None
    if kind == "worker.heartbeat_failing":
        if detail.get("restarting"):  # the venue's weekly restart (docs/venue.md O1): expected, nothing to do
            return None
        worker = str(detail.get("worker") or "?")
        return Alert("venue_heartbeat", worker, "critical", reason or f"Worker {worker} stopped placing orders: "
                     "order heartbeats failing", ts_ms)
    if kind == "worker.dead":  # the orchestrator saw it first; same key as WorkerWatch's, so sent once
        worker = str(detail.get("worker") or "?")
        return Alert("worker_dead", worker, "critical", reason or f"Worker {worker} lost its lease", ts_ms)
    if kind == "leader.paused":
        account, by = str(detail.get("account") or "?"), str(detail.get("by") or "?")
        return Alert("leader_paused", account, "warning", f"Leader {account} paused by {by}: {reason}; "
                     f"`polyfleet leaders resume {account}` copies it again", ts_ms)
    if str(fields.get("level", "")) == "error":
        subject = f"{kind}:{token}" if token else kind
        return Alert("error_event", subject, "warning", f"{kind} {token}: {reason}".replace("  ", " ").strip(), ts_ms)
    return None


@dataclass
class RejectionRate:
    """token.rejected events in a sliding 60 s window; alerts when the count reaches the threshold."""

    threshold: int
    window_ms: int = 60_000
    times: deque[int] = field(default_factory=deque)
    reasons: deque[str] = field(default_factory=lambda: deque(maxlen=3))

    def observe(self, fields: dict[str, Any], ts_ms: int) -> Alert | None:
        if fields.get("kind") != "token.rejected":
            return None
        self.times.append(ts_ms)
        self.reasons.append(str(fields.get("reason", "")))
        while self.times and self.times[0] <= ts_ms - self.window_ms:
            self.times.popleft()
        if len(self.times) < self.threshold:
            return None
        return Alert("risk_rejections", "rate", "warning",
                     f"{len(self.times)} signals rejected in the last minute (threshold {self.threshold}); latest: "
                     + " | ".join(self.reasons), ts_ms)


@dataclass
class WorkerWatch:
    """Alerts once when a worker goes from alive to dead (or is dead while it holds tokens)."""

    alive_before: set[str] = field(default_factory=set)

    def observe(self, workers: dict[str, tuple[bool, int]], ts_ms: int) -> list[Alert]:
        """``workers``: id -> (lease present, tokens assigned)."""
        out = []
        for wid, (alive, assigned) in sorted(workers.items()):
            if not alive and (wid in self.alive_before or assigned > 0):
                out.append(Alert("worker_dead", wid, "critical",
                                 f"Worker {wid} lost its lease with {assigned} token(s) assigned; the orchestrator "
                                 "reassigns them to live workers", ts_ms))
        self.alive_before = {wid for wid, (alive, _) in workers.items() if alive}
        return out


@dataclass
class GatewayWatch:
    """Alerts when tokens are wanted but no gateway has shown liveness for ``stall_ms``."""

    stall_ms: int
    missing_since: int | None = None

    def observe(self, wanted: int, alive: bool, ts_ms: int) -> Alert | None:
        if alive or wanted == 0:
            self.missing_since = None
            return None
        if self.missing_since is None:
            self.missing_since = ts_ms
        silent = ts_ms - self.missing_since
        if silent < self.stall_ms:
            return None
        return Alert("gateway_stall", "gateway", "critical",
                     f"No market data: {wanted} token(s) wanted but no ws_gateway alive for {silent // 1000}s", ts_ms)


@dataclass
class FeedWatch:
    """Alerts when the gateway is alive (its heartbeat is fresh) yet passes on no market frame while
    tokens are wanted: a subscription that lapsed behind a socket that still answers pings. The
    gateway reconnects on silence itself; this says when that has not helped for ``silent_ms``."""

    silent_ms: int
    quiet_since: int | None = None

    def observe(self, wanted: int, alive: bool, frames_per_sec: float, ts_ms: int) -> Alert | None:
        if not alive or wanted == 0 or frames_per_sec > 0:
            self.quiet_since = None  # a dead gateway is gateway_stall's business
            return None
        if self.quiet_since is None:
            self.quiet_since = ts_ms
        quiet = ts_ms - self.quiet_since
        if quiet < self.silent_ms:
            return None
        return Alert("gateway_silent", "gateway", "warning",
                     f"Gateway alive but no market frame for {quiet // 1000}s with {wanted} token(s) wanted", ts_ms)


@dataclass
class Throttle:
    dedup_ms: int
    max_per_minute: int
    last_sent: dict[str, int] = field(default_factory=dict)
    sent_times: deque[int] = field(default_factory=deque)
    suppressed: int = 0

    def allow(self, alert: Alert) -> bool:
        now = alert.ts_ms
        last = self.last_sent.get(alert.key)
        if last is not None and now - last < self.dedup_ms:
            self.suppressed += 1
            return False
        while self.sent_times and self.sent_times[0] <= now - 60_000:
            self.sent_times.popleft()
        if len(self.sent_times) >= self.max_per_minute:
            self.suppressed += 1
            return False
        self.last_sent[alert.key] = now
        self.sent_times.append(now)
        if len(self.last_sent) > 10_000:  # bounded memory: forget the oldest keys
            for key, _ in sorted(self.last_sent.items(), key=lambda kv: kv[1])[:5_000]:
                del self.last_sent[key]
        return True

    def take_suppressed(self) -> int:
        n, self.suppressed = self.suppressed, 0
        return n


ICONS = {"critical": "\U0001F6A8", "warning": "\u26A0\uFE0F", "info": "\u2139\uFE0F"}


def payload(alert: Alert, fmt: str, namespace: str, chat_id: str = "", suppressed: int = 0) -> dict[str, Any]:
    """The webhook body: ``generic`` JSON, or a Telegram Bot API ``sendMessage`` body."""
    note = f" ({suppressed} similar alert(s) suppressed since the last one)" if suppressed else ""
    if fmt == "telegram":
        text = f"{ICONS.get(alert.severity, '')} polyfleet [{namespace}] {alert.kind}: {alert.text}{note}"
        return {"chat_id": chat_id, "text": text[:4000], "disable_web_page_preview": True}
    return {"source": "polyfleet", "namespace": namespace, "kind": alert.kind, "subject": alert.subject,
            "severity": alert.severity, "text": alert.text + note, "ts": alert.ts_ms, "suppressed": suppressed}
