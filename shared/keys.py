"""Every Redis key, stream, consumer group and channel polyfleet uses.

This is the ONLY module that spells a key (tests/architecture enforces it). Each key is a
method of :class:`Keys`, so the namespace prefix (``PF_NAMESPACE``, default ``pf``) is applied in
one place, and each carries its spec in :data:`KEY_SPECS` (type, writer, readers, retention),
which ``docs/redis-schema.md`` mirrors (a test keeps the two in step).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_NAMESPACE = "pf"

# Consumer groups. A group name is not a key, but it is part of the contract, so it lives here.
GROUP_ORCHESTRATOR = "orchestrator"
GROUP_API = "api"
GROUP_ALERTER = "alerter"  # services/alerter on pf:events
GROUP_WORKER = "worker"  # each worker's own group on its pf:cmd:{worker_id} stream

# Requester names for the gateway's wanted sets.
REQUESTER_ORCHESTRATOR = "orchestrator"
REQUESTER_ARB_SCANNER = "arb_scanner"
# pf:reserved field prefix of the arbitrage's claims on risk.max_notional_total (arb_scanner/budget.py)
ARB_RESERVED_PREFIX = "arb:"

# Approximate MAXLEN for streams: long enough to replay a busy day, short enough that a
# forgotten deployment cannot eat the server's memory. XADD uses "~" so trimming is cheap.
STREAM_MAXLEN = {
    "signals": 1_000_000,
    "cmd": 100_000,
    "control": 100_000,
    "orders": 1_000_000,
    "fills": 1_000_000,
    "events": 1_000_000,
    "sessions": 100_000,
    "opportunities": 200_000,
    "resolutions": 100_000,
    "redemptions": 100_000,
}

TOKEN_STATES = ("queued", "starting", "running", "exiting", "cooldown", "done", "rejected", "error")


@dataclass(frozen=True)
class KeySpec:
    """One row of the schema: how a key is spelled and what it holds."""

    pattern: str  # with {placeholders}, without the namespace
    kind: str  # stream | channel | hash | set | zset | string
    writers: str
    readers: str
    meaning: str
    retention: str = ""


KEY_SPECS: tuple[KeySpec, ...] = (
    # streams
    KeySpec("signals", "stream", "signal_collector", "orchestrator (group orchestrator), api, cli",
            "BUY / SELL signals", "MAXLEN ~1,000,000"),
    KeySpec("cmd:{worker_id}", "stream", "orchestrator", "maker_worker (group worker; the worker it names only)",
            "START (merged params, epoch), EXIT, STOP", "MAXLEN ~100,000"),
    KeySpec("control", "stream", "api, cli", "orchestrator (group orchestrator)",
            "stop token, blacklist edits, handled reset, drain, halt", "MAXLEN ~100,000"),
    KeySpec("orders", "stream", "maker_worker", "api",
            "order placed / cancelled / rejected", "MAXLEN ~1,000,000"),
    KeySpec("fills", "stream", "maker_worker", "orchestrator (group orchestrator), api, cli",
            "fills with price, size, fee, trade id and settlement status; trade status changes (type trade)",
            "MAXLEN ~1,000,000"),
    KeySpec("events", "stream", "orchestrator, signal_collector, arb_scanner, redeemer",
            "alerter (group alerter), api, cli",
            "audit: decisions with reasons, state changes, errors", "MAXLEN ~1,000,000"),
    KeySpec("sessions", "stream", "maker_worker", "orchestrator (group orchestrator)",
            "session reports: started, closed (token released), failed", "MAXLEN ~100,000"),
    KeySpec("opportunities", "stream", "arb_scanner", "api",
            "arbitrage opportunities and near misses", "MAXLEN ~200,000"),
    KeySpec("resolutions", "stream", "ws_gateway", "orchestrator (group orchestrator)",
            "markets the venue resolved (market channel market_resolved): condition id, outcome ids, winner",
            "MAXLEN ~100,000"),
    KeySpec("redemptions", "stream", "redeemer", "orchestrator (group orchestrator)",
            "positions of resolved markets redeemed on the venue (type redemption): token, condition, won, "
            "shares, payout, tx hash", "MAXLEN ~100,000"),
    # pub/sub
    KeySpec("tick:{token_id}", "channel", "ws_gateway", "maker_worker, arb_scanner",
            "JSON tick: token_id, seq, bid, ask, bid_size, ask_size, last, tick_size, ts_event, ts_recv"),
    KeySpec("gw:notify", "channel", "orchestrator, arb_scanner", "ws_gateway",
            '"the wanted set changed"'),
    # hashes, sets, strings
    KeySpec("book:{token_id}", "hash", "ws_gateway", "maker_worker, arb_scanner, api, cli",
            "latest tick (same fields as the channel)"),
    KeySpec("gw:want:{requester}", "set", "orchestrator, arb_scanner", "ws_gateway, alerter, api, cli",
            "token ids that requester needs streamed"),
    KeySpec("gw:alive", "string", "ws_gateway", "maker_worker (shared.tickfeed), arb_scanner, alerter, api",
            "gateway liveness for tick consumers: instance id; missing = no gateway is publishing",
            "PX 3 x heartbeat interval"),
    KeySpec("token:{token_id}", "hash", "orchestrator (lifecycle, position from its ledger)",
            "maker_worker, redeemer, api, cli",
            "state, owner, epoch, source, account (the followed wallet whose signal admitted it; '' for the screen), "
            "leader_price (that signal's price: the scorecard's slippage), signal_id, queued_at, timestamps, params, "
            "last event, market_version (v1/v2; absent = v1); "
            "position, PnL and exposure, matched, confirmed and pending (the fields below); fills@{epoch} = fills "
            "of that epoch's session applied so far; redeemed_at (ms), redeemed_shares, redeemed_payout, "
            "redeem_tx once its position in a resolved market was redeemed"),
    KeySpec("ledger:{token_id}", "hash", "orchestrator", "orchestrator, api",
            "the token's fills and their trades' settlement status: base (JSON: what settled entries folded "
            "into), f:{fill id} (JSON fill), t:{trade id} (status), adj:{epoch} (shares a session held without "
            "fills); shared/ledger.py", "settled entries folded into base at each session's close"),
    KeySpec("tokens:{state}", "set", "orchestrator", "api, cli",
            "index of tokens by state: " + ", ".join(TOKEN_STATES)),
    KeySpec("session:{token_id}", "hash", "maker_worker (the owner at the current epoch)",
            "maker_worker (a new owner), api",
            "session snapshot: epoch, strategy state, open order ids, intents, trades (the fills' venue trades "
            "not settled yet, JSON: id, side, size, price, status, a SELL's cost basis, the fee), trims (the "
            "partial exits done and still to do, JSON {pending: [[id, fraction]], done: [id]})"),
    KeySpec("workers", "set", "maker_worker", "orchestrator, alerter, api, cli",
            "ids of every registered worker (alive or not: the lease says which)"),
    KeySpec("worker:{worker_id}", "hash", "maker_worker; orchestrator (draining)", "orchestrator, alerter, api, cli",
            "host, pid, capacity, load, started, last beat, draining, ready (venue account open)"),
    KeySpec("worker:{worker_id}:lease", "string", "maker_worker", "orchestrator, alerter, api, cli",
            "liveness lease; missing = dead", "PX workers.lease_ms"),
    KeySpec("cursor:{account}", "hash", "signal_collector", "signal_collector, cli",
            "collector cursor per target: last trade time and the trade keys seen at it"),
    KeySpec("chain:cursor", "hash", "signal_collector", "signal_collector",
            "the chain source's cursor: last block whose OrderFilled logs were all taken (block, updated_ms)"),
    KeySpec("meta:{token_id}", "hash", "signal_collector", "every service",
            "token metadata (A8); version = the market system (Gamma version v1/v2; absent = v1)"),
    KeySpec("seen:{account}", "zset", "signal_collector", "signal_collector",
            "signal ids already emitted for a followed wallet (or `screen`), scored by trade second; "
            "lets the live-data source and the poller emit each trade once",
            "trimmed below cursor - copytrade.dedup_window_sec"),
    KeySpec("blacklist", "hash", "orchestrator (from control requests)", "orchestrator, api, cli",
            "key -> JSON {reason, expires_at}"),
    KeySpec("ignored", "zset", "orchestrator", "orchestrator, api, cli",
            "token -> expiry time (ms)"),
    KeySpec("ignored:why", "hash", "orchestrator", "api, cli", "token -> reason it is ignored"),
    KeySpec("cooldown:{token_id}", "string", "orchestrator", "orchestrator, api",
            "present = cooling down", "EX cooldown.cooldown_sec_per_token"),
    KeySpec("handled", "set", "orchestrator", "orchestrator, api, cli",
            "tokens already handled (C6)"),
    KeySpec("exposure", "hash", "orchestrator", "orchestrator, api",
            "token -> notional; field _total"),
    KeySpec("queue", "zset", "orchestrator", "orchestrator, api, cli",
            "queued tokens -> time of the signal that queued them: the FIFO start order (C5)"),
    KeySpec("worker:{worker_id}:tokens", "set", "orchestrator", "orchestrator, alerter, api, cli",
            "tokens assigned to that worker (starting, running, exiting): its load, and what moves when it dies"),
    KeySpec("reserved", "hash", "orchestrator (risk script); arb_scanner (arb:* fields)", "orchestrator, api, arb_scanner",
            "token -> notional reserved at admission; arb:{set id} -> $ the arbitrage has at risk in that set; "
            "field _committed = sum of max(reserved, exposure) and of the arb:* claims"),
    KeySpec("pnl:daily", "hash", "orchestrator", "orchestrator, api, cli",
            "UTC day (YYYY-MM-DD) -> realised PnL from fills that day"),
    KeySpec("exits:queued", "zset", "orchestrator", "orchestrator, api, cli",
            "token -> time its exit was asked for, waiting for an exit slot (C5, C10)"),
    KeySpec("closing", "hash", "orchestrator", "orchestrator",
            "token -> a closed session report (JSON) read before all of its session's fills: applied when the "
            "last fill is, or after workers.lease_ms without it"),
    KeySpec("applied:{kind}", "zset", "orchestrator", "orchestrator",
            "message id -> when applied (ms), kind signals, fills, resolutions or redemptions: a repeated id is "
            "applied once",
            "pruned after 24 h"),
    KeySpec("orchestrator:leader", "string", "orchestrator", "orchestrator, api, cli",
            "instance id of the active orchestrator", "PX 3 x poll interval, renewed"),
    KeySpec("health:{service}:{instance}", "string", "every service", "`--check`, alerter (ws_gateway's), api, cli",
            "heartbeat summary (JSON)", "EX 3 x heartbeat interval"),
    KeySpec("arb:catalogue", "hash", "arb_scanner", "arb_scanner, api",
            "set id (condition id, or neg-risk market id) -> JSON: kinds, title, tokens, fee schedules, "
            "min order size, tick, end date", "replaced on each arbitrage.catalogue_refresh_sec"),
    KeySpec("arb:exposure", "hash", "arb_scanner", "arb_scanner, api",
            "set id -> $ held in arbitrage positions (unmerged legs, sets held to resolution); field _total"),
    KeySpec("arb:held", "hash", "arb_scanner", "arb_scanner, api",
            "set id -> JSON of the complete sets held to resolution (sets, $ cost, condition ids, tokens); "
            "deleted when redeemed and booked"),
    KeySpec("arb:pnl:daily", "hash", "arb_scanner", "arb_scanner, api, cli",
            "UTC day (YYYY-MM-DD) -> realised arbitrage PnL"),
    KeySpec("arb:trades", "zset", "arb_scanner", "arb_scanner",
            "execution id -> start time (ms): trades per minute", "trimmed to the last hour"),
    KeySpec("redeemable", "hash", "orchestrator", "redeemer, orchestrator, api, cli",
            "token -> JSON of a position held when its market resolved: condition_id, token_id, won, "
            "winning_token, winning_outcome, position (matched), position_confirmed, market_version, neg_risk, "
            "resolved_at (ms)",
            "until the redemption is booked"),
    KeySpec("redeem:status", "hash",
            "redeemer; orchestrator (deletes a condition's entry once the redemptions of all its tokens are booked)",
            "redeemer, orchestrator (an operator's retry is checked against it), api, cli",
            "condition id -> JSON of its redemption (shared/redemptions.py): state (waiting, due, sent, unknown, "
            "failed, setup_error, redeemed), attempts, reason, next_at (ms: the next try), tried_at, tokens "
            "(token_id, won, shares: the wallet's on-chain balance before the last send), market_version, "
            "wallet, tx_hash, updated_at; the retry schedule, so a restarted redeemer keeps its backoff",
            "until the redemption is booked"),
    KeySpec("redeem:retry", "hash",
            "orchestrator (from control requests); redeemer (drops a leftover with its status)", "redeemer, api, cli",
            "condition id -> ms an operator asked to retry its redemption now (`polyfleet redemptions --retry`): "
            "due at once if no attempt came after it",
            "deleted with the redemption's status"),
    KeySpec("copy:exposure", "hash", "orchestrator", "orchestrator, api",
            "token -> 'account|$' of each open copy of a followed wallet (the copy's notional at the leader's "
            "price, scaled down by partial exits); @{account} -> that leader's open copies together, what its "
            "copy budget_usd is checked against (docs/copytrading.md)",
            "a token's entry leaves with its reservation (session ended, dequeued, stopped)"),
    KeySpec("leader:held", "hash", "orchestrator", "orchestrator",
            "{account}|{token} -> shares the leader holds as the signals we saw add up (BUYs less SELLs): "
            "what a SELL's fraction is taken of", "a field leaves when it reaches 0"),
    KeySpec("leader:value", "hash", "signal_collector", "orchestrator, api, cli",
            "account -> the leader's portfolio value in $ (Data API /value), for proportional sizing",
            "re-read every copytrade.value_refresh_sec"),
    KeySpec("leader:stats", "hash", "signal_collector", "orchestrator, api, cli",
            "account -> JSON {pnl_usd, volume_usd, trades, window, read_at}: an enabled leader's own PnL "
            "(Data API /v2/leaderboard standing) and volume (/v2/user-volume) over copytrade.leader_stats_window, "
            "for its scorecard", "re-read every copytrade.value_refresh_sec"),
    KeySpec("leaders:paused", "hash", "orchestrator (auto-demotion, control requests)", "orchestrator, api, cli",
            "account -> JSON {reason, ts, by}: a paused leader's BUYs are not copied (docs/copytrading.md "
            "\"Auto-demotion\")", "a field leaves on `polyfleet leaders resume`"),
    KeySpec("leaders:resumed", "hash", "orchestrator (from control requests)", "orchestrator",
            "account -> ms of its last resume: auto-demotion judges only the signals and copies after it",
            "kept until deleted (one field per leader ever resumed)"),
    KeySpec("halt", "string", "orchestrator (from control requests)", "every service",
            "global kill switch: absent, reduce_only or halt"),
    KeySpec("ratelimit:{signer}:{bucket}", "hash", "maker_worker, arb_scanner (every process that signs orders)",
            "the same, before each order (bucket orders) or cancel (bucket cancels)",
            "one signer's venue rate budget, shared by the fleet (shared/venue/rate_budget.py): remaining "
            "(the venue's Poly-RateLimit-Remaining, less what was spent since), reset (unix s), throttled_until "
            "(unix s, after a 429's Retry-After), tier, warning, reports, updated_at",
            "PX 10 min after the last report"),
)


# The position fields of pf:token:{token_id}, written together from the token's ledger
# (services/orchestrator/ledger.py). Matched = every fill not voided (what the worker trades on);
# confirmed = fills whose trade is CONFIRMED (what the venue's balances show); pending = the rest.
TOKEN_LEDGER_FIELDS: tuple[tuple[str, str], ...] = (
    ("position", "shares held, matched: every fill whose trade did not fail (pending ones included)"),
    ("avg_cost", "average cost of the matched position"),
    ("realized_pnl", "realised PnL of the matched fills, fees included (booked to pf:pnl:daily on the fill's day)"),
    ("exposure", "$ at risk: the larger of |position| x avg_cost and the same for the confirmed book "
                 "(a pending BUY is paid, a pending SELL's shares are still held); what pf:exposure holds"),
    ("position_confirmed", "shares held by CONFIRMED trades only: what the venue's balance shows"),
    ("avg_cost_confirmed", "average cost of the confirmed position"),
    ("realized_pnl_confirmed", "realised PnL of CONFIRMED fills only"),
    ("pending", "position - position_confirmed: shares matched but not settled (negative: pending sells)"),
    ("pending_buy", "shares in BUY fills whose trade is MATCHED, MINED or RETRYING"),
    ("pending_sell", "shares in SELL fills whose trade is MATCHED, MINED or RETRYING"),
    ("pending_notional", "$ of those pending fills (BUY cost + SELL proceeds)"),
    ("pending_trades", "number of trades still pending"),
    ("failed_trades", "number of trades that ended FAILED and were voided"),
)


class Keys:
    """Key builder bound to one namespace. Build it once per process with :func:`keys_from_env`."""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        if not namespace or ":" in namespace:
            raise ValueError(f"bad namespace {namespace!r}: non-empty, without ':'")
        self.ns = namespace

    def _k(self, suffix: str) -> str:
        return f"{self.ns}:{suffix}"

    # streams
    def signals(self) -> str:
        return self._k("signals")

    def cmd(self, worker_id: str) -> str:
        return self._k(f"cmd:{worker_id}")

    def control(self) -> str:
        return self._k("control")

    def orders(self) -> str:
        return self._k("orders")

    def fills(self) -> str:
        return self._k("fills")

    def events(self) -> str:
        return self._k("events")

    def sessions(self) -> str:
        return self._k("sessions")

    def opportunities(self) -> str:
        return self._k("opportunities")

    def resolutions(self) -> str:
        return self._k("resolutions")

    def redemptions(self) -> str:
        return self._k("redemptions")

    # pub/sub
    def tick(self, token_id: str) -> str:
        return self._k(f"tick:{token_id}")

    def gw_notify(self) -> str:
        return self._k("gw:notify")

    # hashes, sets, strings
    def book(self, token_id: str) -> str:
        return self._k(f"book:{token_id}")

    def gw_want(self, requester: str) -> str:
        return self._k(f"gw:want:{requester}")

    def gw_alive(self) -> str:
        return self._k("gw:alive")

    def gw_want_pattern(self) -> str:
        """SCAN pattern matching every requester's wanted set."""
        return self._k("gw:want:*")

    def token(self, token_id: str) -> str:
        return self._k(f"token:{token_id}")

    def ledger(self, token_id: str) -> str:
        return self._k(f"ledger:{token_id}")

    def tokens_in_state(self, state: str) -> str:
        if state not in TOKEN_STATES:
            raise ValueError(f"unknown token state {state!r}")
        return self._k(f"tokens:{state}")

    def session(self, token_id: str) -> str:
        return self._k(f"session:{token_id}")

    def workers(self) -> str:
        return self._k("workers")

    def worker(self, worker_id: str) -> str:
        return self._k(f"worker:{worker_id}")

    def worker_lease(self, worker_id: str) -> str:
        return self._k(f"worker:{worker_id}:lease")

    def cursor(self, account: str) -> str:
        return self._k(f"cursor:{account.lower()}")

    def chain_cursor(self) -> str:
        """The collector's chain source: the last block it took whole (services/signal_collector/chain.py)."""
        return self._k("chain:cursor")

    def meta(self, token_id: str) -> str:
        return self._k(f"meta:{token_id}")

    def seen(self, account: str) -> str:
        """``account`` is a followed wallet (lower-cased here) or ``screen`` (the market screen)."""
        return self._k(f"seen:{account.lower()}")

    def blacklist(self) -> str:
        return self._k("blacklist")

    def ignored(self) -> str:
        return self._k("ignored")

    def ignored_why(self) -> str:
        return self._k("ignored:why")

    def cooldown(self, token_id: str) -> str:
        return self._k(f"cooldown:{token_id}")

    def handled(self) -> str:
        return self._k("handled")

    def exposure(self) -> str:
        return self._k("exposure")

    def queue(self) -> str:
        return self._k("queue")

    def worker_tokens(self, worker_id: str) -> str:
        return self._k(f"worker:{worker_id}:tokens")

    def reserved(self) -> str:
        return self._k("reserved")

    def pnl_daily(self) -> str:
        return self._k("pnl:daily")

    def exits_queued(self) -> str:
        return self._k("exits:queued")

    def closing(self) -> str:
        return self._k("closing")

    def applied(self, kind: str) -> str:
        return self._k(f"applied:{kind}")

    def orchestrator_leader(self) -> str:
        return self._k("orchestrator:leader")

    def health(self, service: str, instance: str) -> str:
        return self._k(f"health:{service}:{instance}")

    def health_pattern(self, service: str = "*") -> str:
        return self._k(f"health:{service}:*")

    def arb_catalogue(self) -> str:
        return self._k("arb:catalogue")

    def arb_exposure(self) -> str:
        return self._k("arb:exposure")

    def arb_held(self) -> str:
        return self._k("arb:held")

    def arb_pnl_daily(self) -> str:
        return self._k("arb:pnl:daily")

    def arb_trades(self) -> str:
        return self._k("arb:trades")

    def redeemable(self) -> str:
        return self._k("redeemable")

    def redeem_status(self) -> str:
        return self._k("redeem:status")

    def redeem_retry(self) -> str:
        return self._k("redeem:retry")

    def copy_exposure(self) -> str:
        return self._k("copy:exposure")

    def leader_held(self) -> str:
        return self._k("leader:held")

    def leader_value(self) -> str:
        return self._k("leader:value")

    def leader_stats(self) -> str:
        return self._k("leader:stats")

    def leaders_paused(self) -> str:
        return self._k("leaders:paused")

    def leaders_resumed(self) -> str:
        return self._k("leaders:resumed")

    def halt(self) -> str:
        return self._k("halt")

    def ratelimit(self, signer: str, bucket: str) -> str:
        """The venue's order (``orders``) or cancel (``cancels``) budget of one signing address."""
        return self._k(f"ratelimit:{signer.lower()}:{bucket}")

    def all_pattern(self) -> str:
        """SCAN pattern for every key of this namespace (used by ``polyfleet wipe``)."""
        return self._k("*")


def keys_from_env() -> Keys:
    return Keys(os.environ.get("PF_NAMESPACE", DEFAULT_NAMESPACE))
