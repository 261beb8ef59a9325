"""The leader scorecard's reads (one function for the CLI and the API): the newest entries of
pf:signals, pf:events and pf:fills (bounded by ``copytrade.scorecard``), the pf:token hashes of
every token the state indexes hold, the books of the copies still open, the leaders' portfolio
values (pf:leader:value) and their venue PnL and volume (pf:leader:stats). The arithmetic is shared/scorecard.py.

Decoding the entries and the arithmetic run in a thread: with full windows they take a second or
two of CPU, which the API's event loop (websocket pushes, other requests) must not wait out."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from shared.config import ScorecardSection, Settings
from shared.demotion import paused_leaders
from shared.keys import TOKEN_STATES, Keys
from shared.marks import as_float, mark_price
from shared.messages import AuditEvent, Fill, MessageError, Signal, TradeStatus, decode
from shared.scorecard import COPIED, SKIPPED, LeaderCard, scorecards
from shared.venue.data_stats import LeaderStats

CHUNK = 500  # hashes per pipeline round trip
Entries = list[tuple[str, dict[str, str]]]


def _decoded(entries: Entries, kinds: tuple[str, ...] = ()) -> list[Any]:
    """Newest-first stream entries as messages, oldest first (undecodable ones skipped: the
    consumers skip them too); with ``kinds``, only events of those kinds are decoded (the others
    are most of pf:events, and decoding is the read's cost)."""
    out = []
    for _, fields in reversed(entries):
        if kinds and fields.get("kind") not in kinds:
            continue
        try:
            out.append(decode(fields))
        except MessageError:
            continue
    return out


async def _hashes(r: aioredis.Redis, keys: list[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for i in range(0, len(keys), CHUNK):
        async with r.pipeline(transaction=False) as p:
            for key in keys[i:i + CHUNK]:
                p.hgetall(key)
            out.extend(await p.execute())
    return out


def _cards(raw_signals: Entries, raw_events: Entries, raw_fills: Entries, tokens: dict[str, dict[str, str]],
           marks: dict[str, float | None], values: dict[str, float], stats: dict[str, LeaderStats],
           followed: list[str], cfg: ScorecardSection,
           since: dict[str, int]) -> tuple[list[LeaderCard], dict[str, int]]:
    signals = [m for m in _decoded(raw_signals) if isinstance(m, Signal)
               and (m.ts_event or m.ts_init) >= since.get(m.account.lower(), 0)]
    events = [m for m in _decoded(raw_events, COPIED + SKIPPED) if isinstance(m, AuditEvent)]
    fills = [m for m in _decoded(raw_fills) if isinstance(m, Fill | TradeStatus)]
    cards = scorecards(followed, signals, events, tokens, fills, marks, cfg, values, stats)
    return cards, {"signals": len(signals), "decisions": len(events), "fills": len(fills), "tokens": len(tokens)}


async def read_cards(r: aioredis.Redis, keys: Keys, settings: Settings,
                     cfg: ScorecardSection | None = None,
                     since: dict[str, int] | None = None) -> tuple[list[LeaderCard], dict[str, int]]:
    """Every leader's scorecard, reading the windows of ``cfg`` (default ``copytrade.scorecard``),
    with how many rows of each kind were read. ``since``: leader -> ms; its signals and copies
    before that are left out (auto-demotion judges a resumed leader afresh)."""
    since = {a.lower(): ms for a, ms in (since or {}).items()}
    cfg = cfg or settings.copytrade.scorecard
    raw_signals = await r.xrevrange(keys.signals(), count=cfg.read_signals)
    raw_events = await r.xrevrange(keys.events(), count=cfg.read_events) if cfg.read_events else []
    raw_fills = await r.xrevrange(keys.fills(), count=cfg.read_fills)
    async with r.pipeline(transaction=False) as p:
        for state in TOKEN_STATES:
            p.smembers(keys.tokens_in_state(state))
        ids = sorted(set().union(*await p.execute()))
    hashes = dict(zip(ids, await _hashes(r, [keys.token(t) for t in ids]), strict=True))
    tokens = {t: h for t, h in hashes.items() if h.get("account")
              and as_float(h.get("queued_at")) >= since.get(h["account"].lower(), 0)}
    held = [t for t, h in tokens.items() if abs(as_float(h.get("position"))) > 1e-9]
    books = await _hashes(r, [keys.book(t) for t in held])
    marks = {t: mark_price(b) for t, b in zip(held, books, strict=True)}
    values = {a.lower(): as_float(v) for a, v in (await r.hgetall(keys.leader_value())).items()}
    stats = {a.lower(): s for a, raw in (await r.hgetall(keys.leader_stats())).items()
             if (s := LeaderStats.from_json(raw)) is not None}
    followed = [t.account for t in settings.copytrade.targets if t.enabled]
    return await asyncio.to_thread(_cards, raw_signals, raw_events, raw_fills, tokens, marks, values, stats, followed,
                                   cfg, since)


async def read_leaders(r: aioredis.Redis, keys: Keys, settings: Settings) -> dict[str, Any]:
    """Every leader's scorecard as JSON, whether it is paused and why (``paused``: null or
    {reason, ts, by}), with what was read (``window``)."""
    cfg = settings.copytrade.scorecard
    cards, counts = await read_cards(r, keys, settings, cfg)
    paused = paused_leaders(await r.hgetall(keys.leaders_paused()))
    leaders = [{**c.to_json(), "paused": paused.pop(c.account, None)} for c in cards]
    # A paused wallet the rows no longer name (unfollowed, its signals aged out) is still listed.
    leaders += [{**LeaderCard(a, False).to_json(), "paused": p} for a, p in sorted(paused.items())]
    return {"leaders": leaders, "window": {**counts, "thresholds": cfg.model_dump()}}
