"""The leader backtest's reads (one function for ``polyfleet leaders backtest`` and
``GET /api/leaders/{address}/backtest``; docs/copytrading.md "Backtest"):

* the wallet's trades in the window: Data API ``/trades`` (``takerOnly=false``), paged exactly as
  the collector pages them (shared/venue/trades_feed.py), at most ``copytrade.backtest.max_trades``;
* its portfolio value, Data API ``/value``, when its rules size ``proportional``;
* the marks of the copies still held: CLOB ``/markets/{condition_id}`` (a resolved market marks its
  winner 1, the rest 0), then ``POST /books`` (the mid) for the others.

The replay and the figures are pure: shared/backtest.py, shared/backtest_report.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from shared.backtest import Copy, FillModel, replay
from shared.backtest_report import report
from shared.config import BacktestSection, ConfigError, Settings, merge_strategy_params
from shared.input_errors import InputError
from shared.marks import mark_price
from shared.venue.clob_market import read_market_states
from shared.venue.data_api import Trade, parse_trades, parse_value
from shared.venue.environment import VenueEnvironment, resolve_environment
from shared.venue.market_ws import MarketFrameError, decode_rest_book
from shared.venue.trades_feed import FetchError, Rejected, fetch_trades

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
BOOKS_BATCH = 100  # tokens per POST /books (the gateway's batch)


class BacktestError(Exception):
    """Why a backtest gave no result; the message is what the operator reads."""


class BadRequest(BacktestError, InputError):
    """A malformed address, or days out of bounds."""


class NoHistory(BacktestError):
    """The wallet made no trade in the window."""


class VenueDown(BacktestError):
    """The venue did not answer (or refused the read)."""


def check_request(account: str, days: int, cfg: BacktestSection) -> str:
    """The address in lower case, or :class:`BadRequest` naming what is wrong."""
    if not ADDRESS.fullmatch(account):
        raise BadRequest(f"{account!r} is not a 0x-prefixed 40-hex-digit address")
    if not 1 <= days <= cfg.max_days:
        raise BadRequest(f"days must be 1 to {cfg.max_days} (copytrade.backtest.max_days), got {days}")
    return account.lower()


async def leader_trades(http: httpx.AsyncClient, data_url: str, account: str, start: int, page_size: int,
                        max_trades: int) -> tuple[list[Trade], bool]:
    """The wallet's trades since ``start``, oldest first, each once; and whether ``max_trades`` cut it."""
    try:
        rows = await fetch_trades(http, data_url, account, start, page_size, max_rows=max_trades)
    except Rejected as exc:
        raise VenueDown(f"the Data API at {data_url} refused the trades read: {exc}") from exc
    except FetchError as exc:
        raise VenueDown(f"the venue is unreachable: Data API at {data_url}: {exc}") from exc
    trades, _ = await asyncio.to_thread(parse_trades, rows)  # CPU: the API's event loop must not wait it out
    unique = {t.key: t for t in reversed(trades) if t.account in ("", account) and t.timestamp >= start}
    return list(unique.values()), len(rows) >= max_trades


async def leader_value(http: httpx.AsyncClient, data_url: str, account: str) -> float | None:
    try:
        resp = await http.get(f"{data_url}/value", params={"user": account})
        resp.raise_for_status()
        return parse_value(resp.json(), account)
    except (httpx.HTTPError, ValueError):
        return None  # proportional copies are then skipped with the reason, as in the orchestrator


async def read_marks(http: httpx.AsyncClient, clob_url: str, held: list[Copy]) -> dict[str, float | None]:
    """token -> its mark: 1 or 0 in a resolved market, else the mid of its book; None when unknown."""
    states = await read_market_states(http, clob_url, [c.condition_id for c in held if c.condition_id])
    marks: dict[str, float | None] = {}
    for c in held:
        state = states.get(c.condition_id)
        if state is not None and state.resolved:
            marks[c.token_id] = float(c.token_id in state.winners)
    open_tokens = [c.token_id for c in held if c.token_id not in marks]
    for i in range(0, len(open_tokens), BOOKS_BATCH):
        chunk = open_tokens[i:i + BOOKS_BATCH]
        try:
            resp = await http.post(f"{clob_url}/books", json=[{"token_id": t} for t in chunk])
            resp.raise_for_status()
            body = resp.json()
        except (httpx.HTTPError, ValueError):
            continue  # those copies stay unmarked (the answer counts them)
        for raw in body if isinstance(body, list) else []:
            try:
                book = decode_rest_book(raw)
            except MarketFrameError:
                continue
            top = {"bid": str(max((lv.price for lv in book.bids), default=0.0)),
                   "ask": str(min((lv.price for lv in book.asks), default=0.0))}
            marks[book.asset_id] = mark_price(top)
    return marks


def _order_size(settings: Settings) -> Callable[[Trade], float]:
    def size(t: Trade) -> float:
        try:
            return float(merge_strategy_params(settings, t.token_id, t.slug)["maker_strategy"]["order_size"])
        except ConfigError:
            return 0.0  # the orchestrator rejects such a token; no copy is made of it
    return size


async def venue(settings: Settings, timeout_s: float = 5.0) -> VenueEnvironment:
    """The venue's URLs (the sim's environment is asked for ``timeout_s``), or :class:`VenueDown`."""
    try:
        return await resolve_environment(settings.polymarket, settings.mode, timeout_s)
    except (ConnectionError, ValueError) as exc:
        raise VenueDown(f"the venue is unreachable: {exc}") from exc


async def run_backtest(settings: Settings, env: VenueEnvironment, http: httpx.AsyncClient, account: str,
                       days: int, now: int | None = None) -> dict[str, Any]:
    """The whole backtest of ``account`` over the last ``days`` days, as JSON (docs/copytrading.md)."""
    cfg = settings.copytrade
    account = check_request(account, days, cfg.backtest)
    end = int(now if now is not None else time.time())
    start = end - days * 86_400
    data_url, clob_url = env.url("data_url"), env.url("clob_url")
    trades, truncated = await leader_trades(http, data_url, account, start, cfg.page_size, cfg.backtest.max_trades)
    if not trades:
        raise NoHistory(f"no history: {account} made no trade in the last {days} day(s) (Data API /trades)")
    rules = cfg.rules_for(account)
    target = next((t for t in cfg.targets if t.account.lower() == account), None)
    value = await leader_value(http, data_url, account) if rules.sizing == "proportional" else None
    model = FillModel(cfg.backtest.slippage_bps, cfg.backtest.delay_sec)
    min_size = target.min_size if target is not None else 0.0
    rep = await asyncio.to_thread(lambda: replay(trades, rules, model, start, end, order_size=_order_size(settings),
                                                 min_size=min_size, leader_value=value, bankroll=cfg.bankroll_usd))
    held = [c for c in rep.copies.values() if c.held > 0]
    marks = await read_marks(http, clob_url, held)
    context = {"followed": target is not None and target.enabled, "min_size": min_size,
               "order_size": settings.maker_strategy.order_size, "bankroll_usd": cfg.bankroll_usd,
               "leader_value_usd": value}
    return report(rep, marks, end, account=account, days=days, model=model, rules=rules, truncated=truncated,
                  context=context)
