"""The Data API v2 under ``/data-api/v2`` (docs/venue.md D1, D2; sdk-wire §9.3), beside v1.

``/v2/trades``, ``/v2/activity``, ``/v2/positions``: snake_case rows in
``{"data": [...], "pagination": {"limit", "has_more", "next_cursor"}}``, paged by ``cursor``
(``next_cursor`` null on the last page, ``has_more`` = a cursor follows); ``offset`` is refused,
``limit`` ≤ 1000. ``condition_id`` takes a comma list (32- or 31-byte v2 ids). ``/v2/trades``
serves taker rows only unless ``taker_only=false`` (``takerOnly`` too), as v1 ``/trades``
(decision 7). ``/v2/activity`` has the trades of a wallet and its split / merge / redeem /
conversion operations. ``/v2/approvals?user=`` lists the trading approvals the official SDK
checks, read from the sim's chain (:mod:`contracts`). ``/v2/user-volume`` and the leaderboard's
``?user=`` standing (docs/venue.md D5) come from the trade feed (:mod:`wallet_stats`); the board
itself (no ``user``) and categories other than ``overall`` are not served (400).
"""

from __future__ import annotations

import base64
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.sim_exchange import wallet_stats
from services.sim_exchange.contracts import MAX_UINT256
from services.sim_exchange.market import SimMarket
from services.sim_exchange.state import SimState

MAX_LIMIT = 1000
_TRADE_FIELDS = {  # v2 name -> v1 row name
    "proxy_wallet": "proxyWallet", "side": "side", "token_id": "asset", "condition_id": "conditionId", "size": "size",
    "price": "price", "timestamp": "timestamp", "title": "title", "slug": "slug", "icon": "icon",
    "event_slug": "eventSlug", "outcome": "outcome", "outcome_index": "outcomeIndex", "name": "name",
    "pseudonym": "pseudonym", "bio": "bio", "profile_image": "profileImage",
    "profile_image_optimized": "profileImageOptimized", "transaction_hash": "transactionHash",
}
_OP_TYPES = {"split": "SPLIT", "merge": "MERGE", "redeem": "REDEEM", "convert": "CONVERSION"}
# the trading approvals the SDK requires (its _required_trading_approvals): token field -> spender fields
APPROVALS: dict[str, tuple[str, ...]] = {
    "collateral_token": ("standard_exchange", "neg_risk_exchange", "collateral_adapter", "neg_risk_collateral_adapter",
                         "protocol_v2_router", "exchange_v3", "perps_deposit_contract"),
    "conditional_tokens": ("standard_exchange", "neg_risk_exchange", "collateral_adapter",
                           "neg_risk_collateral_adapter", "auto_redeem_operator", "binary_module", "neg_risk_module"),
    "position_manager": ("protocol_v2_router", "exchange_v3", "auto_redeem_operator"),
}


class DataQueryError(ValueError):
    """A bad Data API query (answered 400)."""


def page(rows: list[dict[str, Any]], q: dict[str, str], default_limit: int = 100) -> dict[str, Any]:
    if "offset" in q:
        raise DataQueryError("offset is not supported by the v2 Data API: page with cursor")
    try:
        limit = int(q.get("limit") or default_limit)
        start = int(base64.urlsafe_b64decode(q["cursor"].encode()).decode().removeprefix("data:")) if q.get(
            "cursor") else 0
    except ValueError as exc:
        raise DataQueryError("limit must be an integer and cursor one this API returned") from exc
    if not 1 <= limit <= MAX_LIMIT or start < 0:
        raise DataQueryError(f"limit must be between 1 and {MAX_LIMIT}")
    more = start + limit < len(rows)
    cursor = base64.urlsafe_b64encode(f"data:{start + limit}".encode()).decode() if more else None
    return {"data": rows[start:start + limit], "pagination": {"limit": limit, "has_more": more, "next_cursor": cursor}}


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def router(state: SimState) -> APIRouter:
    r = APIRouter(prefix="/data-api/v2")

    def conditions(q: dict[str, str]) -> set[str] | None:
        raw = [c.strip() for c in (q.get("condition_id") or q.get("market") or "").split(",") if c.strip()]
        if not raw:
            return None
        return {m.condition_id for m in (state.sim.condition(c) for c in raw) if m is not None}

    def window(q: dict[str, str]) -> Callable[[int], bool]:
        try:
            start, end = int(q.get("start") or 0), int(q.get("end") or 0)
        except ValueError as exc:
            raise DataQueryError("start and end are epoch seconds") from exc
        return lambda ts: (not start or ts >= start) and (not end or ts <= end)

    def trade_rows(q: dict[str, str], include_maker: bool) -> list[dict[str, Any]]:
        user, side, cids, when = q.get("user", "").lower(), q.get("side", "").upper(), conditions(q), window(q)
        out = []
        for t in sorted(state.feed.rows, key=lambda t: (t.row["timestamp"], t.seq), reverse=True):
            row = t.row
            if (t.maker and not include_maker) or (user and row["proxyWallet"] != user) or (
                    side and row["side"] != side) or (cids is not None and row["conditionId"] not in cids):
                continue
            if when(int(row["timestamp"])):
                out.append({k: row.get(v) for k, v in _TRADE_FIELDS.items()})
        return out

    def run(build: Callable[[dict[str, str]], Any]) -> Any:
        async def handler(request: Request) -> Any:
            try:
                return build(dict(request.query_params))
            except DataQueryError as exc:
                return _err(400, str(exc))
        return handler

    def trades(q: dict[str, str]) -> dict[str, Any]:
        taker_only = (q.get("taker_only") or q.get("takerOnly") or "true").lower() != "false"
        return page(trade_rows(q, include_maker=not taker_only), q)

    def activity(q: dict[str, str]) -> dict[str, Any]:
        user = q.get("user", "").lower()
        if not user:
            raise DataQueryError("user is required")
        types = {t.strip().upper() for t in q.get("type", "").split(",") if t.strip()}
        rows = [{**row, "type": "TRADE", "usdc_size": round(float(row["size"]) * float(row["price"]), 6)}
                for row in trade_rows(q, include_maker=True)] if not types or "TRADE" in types else []
        cids, when = conditions(q), window(q)
        for op in state.ctf.ops:
            kind = _OP_TYPES.get(op.kind, "")
            market = state.sim.condition(op.market)
            if op.address != user or (types and kind not in types) or not when(int(op.ts)):
                continue
            if cids is not None and (market is None or market.condition_id not in cids):
                continue
            rows.append({"type": kind, "proxy_wallet": op.address, "timestamp": int(op.ts),
                         "transaction_hash": op.tx_hash, "condition_id": market.condition_id if market else op.market,
                         "usdc_size": op.amount, "title": market.question if market else "",
                         "slug": market.slug if market else "", "event_slug": market.event_slug if market else ""})
        ascending = (q.get("sort_direction") or q.get("sortDirection") or "DESC").upper() == "ASC"
        rows.sort(key=lambda row: int(row["timestamp"]), reverse=not ascending)
        return page(rows, q)

    def positions(q: dict[str, str]) -> dict[str, Any]:
        user, cids, status = q.get("user", "").lower(), conditions(q), (q.get("status") or "").upper()
        accounts = [state.matcher.accounts[user]] if user in state.matcher.accounts else (
            [] if user else list(state.matcher.accounts.values()))
        rows = []
        for acct in accounts:
            for token, size in acct.positions.items():
                market = state.sim.market_of.get(token)
                if market is None or size <= 1e-9 or (cids is not None and market.condition_id not in cids):
                    continue
                row = position_row(acct.address, market, token, size, acct.positions)
                if status in ("", "ALL") or row["status"] == status or (status == "MERGEABLE" and row["mergeable"]):
                    rows.append(row)
        return page(rows, q)

    def position_row(wallet: str, m: SimMarket, token: str, size: float, held: dict[str, float]) -> dict[str, Any]:
        book, other = state.sim.by_token[token], m.sibling(token)
        winner = state.ctf.winners.get(m.condition_id)
        price = book.mid if winner is None else float(winner == token)
        fills = [(f.size, f.price) for o, f in state.matcher.trades
                 if o.maker_address == wallet and o.token_id == token and o.side == "BUY"]
        bought = sum(s for s, _ in fills)
        avg = sum(s * p for s, p in fills) / bought if bought else book.mid
        cost, value = round(size * avg, 6), round(size * price, 6)
        pnl = round(value - cost, 6)
        return {
            "proxy_wallet": wallet, "token_id": token, "condition_id": m.condition_id, "current_size": size,
            "avg_price": round(avg, 6), "entry_cost_usdc": cost, "entry_fees_usdc": 0, "total_cost_usdc": cost,
            "current_price": price, "current_value": value, "total_size": size, "realized_pnl": 0,
            "unrealized_pnl": pnl, "total_pnl": pnl, "percent_pnl": round(pnl / cost * 100, 4) if cost else 0,
            "percent_realized_pnl": 0, "status": "OPEN" if winner is None else "REDEEMABLE",
            "redeemable": winner is not None, "mergeable": held.get(other.token_id, 0.0) > 1e-9,
            "negative_risk": m.neg_risk, "archived": False, "verified": True, "title": m.question, "slug": m.slug,
            "event_slug": m.event_slug, "outcome": book.outcome, "outcome_index": book.outcome_index,
            "opposite_outcome": other.outcome, "opposite_token_id": other.token_id,
            "end_date": m.end_date.strftime("%Y-%m-%d"),
        }

    def approvals(q: dict[str, str]) -> dict[str, Any]:
        try:
            wallet = to_checksum_address(q.get("user", ""))
        except ValueError as exc:
            raise DataQueryError("user must be a wallet address") from exc
        env, rows = state.env, []
        for token_field, spenders in APPROVALS.items():
            for spender in spenders:
                amount = state.contracts.allowance(token_field, wallet, env.address(spender))
                row: dict[str, Any] = {"token": env.address(token_field), "spender": env.address(spender),
                                       "standard": "ERC20" if token_field == "collateral_token" else "ERC1155",
                                       "approved": amount > 0}
                if token_field == "collateral_token":
                    row["amount"] = "max" if amount >= MAX_UINT256 else str(amount)
                rows.append(row)
        return {"data": {"address": wallet, "chain_id": env.chain_id, "contracts": rows}}

    def resolved(token: str) -> float | None:
        market = state.sim.market_of.get(token)
        winner = state.ctf.winners.get(market.condition_id) if market else None
        return None if winner is None else float(winner == token)

    def mark(token: str) -> float | None:
        paid = resolved(token)
        if paid is not None or token not in state.sim.by_token:
            return paid
        bid, ask = state.top(token)  # the mid as CLOB /midpoint answers it
        return (bid + ask) / 2 if bid is not None and ask is not None else state.sim.by_token[token].mid

    def user_volume(q: dict[str, str]) -> dict[str, Any]:
        user = q.get("user", "").lower()
        if not user:
            raise DataQueryError("user is required")
        try:
            start, end = int(q.get("start") or 0), int(q.get("end") or 0)
        except ValueError as exc:
            raise DataQueryError("start and end are epoch seconds") from exc
        rows = [t.row for t in state.feed.rows if t.row["proxyWallet"] == user]
        return {"data": wallet_stats.user_volume(rows, start, end)}

    def leaderboard(q: dict[str, str]) -> dict[str, Any]:
        user, window = q.get("user", "").lower(), (q.get("time_period") or "day").lower()
        if not user:
            raise DataQueryError("the sim serves only the ?user= standing of /v2/leaderboard, not the board")
        if window not in ("day", "week", "month", "all"):
            raise DataQueryError("time_period must be day, week, month or all")
        if (q.get("category") or "overall").lower() != "overall":
            raise DataQueryError("the sim has no market categories: category must be overall")
        by_wallet: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in state.feed.rows:
            by_wallet[t.row["proxyWallet"]].append(t.row)
        return {"data": wallet_stats.standing(dict(by_wallet), user, window, int(time.time()), mark, resolved)}

    r.add_api_route("/trades", run(trades), methods=["GET"])
    r.add_api_route("/user-volume", run(user_volume), methods=["GET"])
    r.add_api_route("/leaderboard", run(leaderboard), methods=["GET"])
    r.add_api_route("/activity", run(activity), methods=["GET"])
    r.add_api_route("/positions", run(positions), methods=["GET"])
    r.add_api_route("/approvals", run(approvals), methods=["GET"])
    return r
