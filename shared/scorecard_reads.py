"""The leader scorecard's reads (one function for the CLI and the API): the newest entries of
pf:signals, pf:events and pf:fills (bounded by ``copytrade.scorecard``), the pf:token hashes of
every token the state indexes hold, the books of the copies still open, and the leaders' portfolio
values (pf:leader:value). The arithmetic is shared/scorecard.py."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from shared.config import Settings
from shared.keys import TOKEN_STATES, Keys
from shared.marks import as_float, mark_price
from shared.messages import AuditEvent, Fill, MessageError, Signal, TradeStatus, decode
from shared.scorecard import COPIED, SKIPPED, scorecards

CHUNK = 500  # hashes per pipeline round trip


async def _newest(r: aioredis.Redis, stream: str, count: int, kinds: tuple[str, ...] = ()) -> list[Any]:
    """The stream's newest ``count`` entries as messages, oldest first (undecodable ones skipped:
    the consumers skip them too); with ``kinds``, only events of those kinds are decoded (the
    others are most of pf:events, and decoding is the read's cost)."""
    out = []
    for _, fields in reversed(await r.xrevrange(stream, count=count)):
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


async def read_leaders(r: aioredis.Redis, keys: Keys, settings: Settings) -> dict[str, Any]:
    """Every leader's scorecard as JSON, with what was read (``window``)."""
    cfg = settings.copytrade.scorecard
    signals = [m for m in await _newest(r, keys.signals(), cfg.read_signals) if isinstance(m, Signal)]
    events = [m for m in await _newest(r, keys.events(), cfg.read_events, COPIED + SKIPPED)
              if isinstance(m, AuditEvent)]
    fills = [m for m in await _newest(r, keys.fills(), cfg.read_fills) if isinstance(m, Fill | TradeStatus)]
    async with r.pipeline(transaction=False) as p:
        for state in TOKEN_STATES:
            p.smembers(keys.tokens_in_state(state))
        ids = sorted(set().union(*await p.execute()))
    hashes = dict(zip(ids, await _hashes(r, [keys.token(t) for t in ids]), strict=True))
    tokens = {t: h for t, h in hashes.items() if h.get("account")}
    held = [t for t, h in tokens.items() if abs(as_float(h.get("position"))) > 1e-9]
    books = await _hashes(r, [keys.book(t) for t in held])
    marks = {t: mark_price(b) for t, b in zip(held, books, strict=True)}
    values = {a.lower(): as_float(v) for a, v in (await r.hgetall(keys.leader_value())).items()}
    followed = [t.account for t in settings.copytrade.targets if t.enabled]
    cards = scorecards(followed, signals, events, tokens, fills, marks, cfg, values)
    return {"leaders": [c.to_json() for c in cards],
            "window": {"signals": len(signals), "decisions": len(events), "fills": len(fills), "tokens": len(tokens),
                       "thresholds": cfg.model_dump()}}
