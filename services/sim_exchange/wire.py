"""The exact wire JSON of Polymarket's CLOB, Gamma and market websocket, built from sim state (pure)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from services.sim_exchange.market import SimMarket, TokenBook
from services.sim_exchange.matching import Fill, Order
from services.sim_exchange.settlement import ON_CHAIN

CROWD_ADDRESS = "0x000000000000000000000000000000000000c0de"


def num(value: float) -> str:
    """A decimal string without float noise or trailing zeros ("0.5", "120", "0.0025")."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def ms(ts: float) -> str:
    return str(int(ts * 1000))


def levels_json(levels: dict[float, float], side: str) -> list[dict[str, str]]:
    """Bids ascending and asks descending: the best level is LAST, as on the real venue."""
    prices = sorted((p for p, s in levels.items() if s > 0), reverse=(side == "asks"))
    return [{"price": num(p), "size": num(levels[p])} for p in prices]


def book_json(book: TokenBook, bids: dict[float, float], asks: dict[float, float], ts: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "market": book.condition_id,
        "asset_id": book.token_id,
        "timestamp": ms(ts),
        "hash": "",
        "bids": levels_json(bids, "bids"),
        "asks": levels_json(asks, "asks"),
        "min_order_size": num(book.min_size),
        "tick_size": num(book.tick),
        "neg_risk": book.neg_risk,
        "last_trade_price": num(book.last_trade_price),
    }
    serialized = json.dumps(out, separators=(",", ":"), ensure_ascii=False)
    out["hash"] = hashlib.sha1(serialized.encode("utf-8")).hexdigest()
    return out


def ws_book(book: TokenBook, bids: dict[float, float], asks: dict[float, float], ts: float) -> dict[str, Any]:
    rest = book_json(book, bids, asks, ts)
    return {"event_type": "book", "asset_id": rest["asset_id"], "market": rest["market"], "bids": rest["bids"],
            "asks": rest["asks"], "timestamp": rest["timestamp"], "hash": rest["hash"],
            "tick_size": rest["tick_size"], "last_trade_price": rest["last_trade_price"]}


def best(levels: dict[float, float], side: str) -> str:
    live = [p for p, s in levels.items() if s > 0]
    if not live:
        return "0" if side == "bids" else "1"
    return num(max(live) if side == "bids" else min(live))


def diff_levels(old: dict[float, float], new: dict[float, float]) -> list[tuple[float, float]]:
    """(price, new aggregate size) for every level that changed; size 0 = removed."""
    changes = []
    for p in sorted(set(old) | set(new)):
        a, b = old.get(p, 0.0), new.get(p, 0.0)
        if abs(a - b) > 1e-9:
            changes.append((p, b))
    return changes


def price_change_entries(token_id: str, old: tuple[dict[float, float], dict[float, float]],
                         new: tuple[dict[float, float], dict[float, float]]) -> list[dict[str, str]]:
    bb, ba = best(new[0], "bids"), best(new[1], "asks")
    out = []
    for side_name, idx in (("BUY", 0), ("SELL", 1)):
        for price, size in diff_levels(old[idx], new[idx]):
            h = hashlib.sha1(f"{token_id}:{side_name}:{price}:{size}".encode()).hexdigest()
            out.append({"asset_id": token_id, "price": num(price), "size": num(size), "side": side_name,
                        "hash": h, "best_bid": bb, "best_ask": ba})
    return out


def price_change(condition_id: str, entries: list[dict[str, str]], ts: float) -> dict[str, Any]:
    return {"event_type": "price_change", "market": condition_id, "timestamp": ms(ts), "price_changes": entries}


def last_trade(book: TokenBook, price: float, size: float, side: str, ts: float, tx: str = "") -> dict[str, Any]:
    return {"event_type": "last_trade_price", "asset_id": book.token_id, "market": book.condition_id,
            "price": num(price), "size": num(size), "fee_rate_bps": "0", "side": side, "timestamp": ms(ts),
            "transaction_hash": tx}


def tick_size_change(book: TokenBook, old: float, new: float, ts: float) -> dict[str, Any]:
    return {"event_type": "tick_size_change", "asset_id": book.token_id, "market": book.condition_id,
            "old_tick_size": num(old), "new_tick_size": num(new), "timestamp": ms(ts)}


def gamma_market(m: SimMarket, bids_asks: dict[str, tuple[float | None, float | None]],
                 winner: str | None = None) -> dict[str, Any]:
    """``winner``: the winning token id of a resolved market (closed, outcomePrices 1/0)."""
    yb, ya = bids_asks.get(m.yes.token_id, (None, None))
    prices = ([num(round(m.yes.mid, 3)), num(round(m.no.mid, 3))] if winner is None
              else ["1" if t.token_id == winner else "0" for t in m.tokens])
    liquidity = round(sum(p * s for t in m.tokens for lv in (t.bids, t.asks) for p, s in lv.items()), 4)
    return {
        "id": m.gamma_id,
        "question": m.question,
        "conditionId": m.condition_id,
        "questionID": m.question_id,
        "slug": m.slug,
        "description": f"Simulated market: {m.question}",
        "endDate": m.end_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateIso": m.end_date.strftime("%Y-%m-%d"),
        "version": m.version,
        "outcomes": json.dumps([m.yes.outcome, m.no.outcome]),
        "outcomePrices": json.dumps(prices),
        # v1 outcomes are CTF token ids (JSON text, as ever); v2 ones position ids (a real array), and
        # a v2 market has no clobTokenIds (docs/venue.md V1, G3)
        **({"positionIds": [m.yes.token_id, m.no.token_id]} if m.version == "v2"
           else {"clobTokenIds": json.dumps([m.yes.token_id, m.no.token_id])}),
        "active": True,
        "closed": winner is not None,
        "archived": False,
        "restricted": False,
        "acceptingOrders": winner is None,
        "enableOrderBook": True,
        "negRisk": m.neg_risk,
        **({"negRiskMarketID": m.neg_risk_market_id, "groupItemTitle": m.group_title} if m.neg_risk else {}),
        "orderPriceMinTickSize": m.yes.tick,
        "orderMinSize": m.yes.min_size,
        "volume": num(m.volume),
        "volumeNum": round(m.volume, 6),
        "liquidity": num(liquidity),
        "liquidityNum": liquidity,
        "bestBid": yb if yb is not None else 0,
        "bestAsk": ya if ya is not None else 1,
        "lastTradePrice": m.yes.last_trade_price,
        "spread": round((ya or 1) - (yb or 0), 6),
        "feesEnabled": m.fee_rate > 0,
        "feeSchedule": {"exponent": m.fee_exponent, "rate": m.fee_rate, "takerOnly": True, "rebateRate": 0},
        "makerBaseFee": 0,
        "takerBaseFee": 0,
        "events": [{"id": m.event_id or str(int(m.gamma_id) + 100_000), "slug": m.event_slug, "title": m.question}],
    }


def gamma_event(m: SimMarket, market_json: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(int(m.gamma_id) + 100_000), "slug": m.event_slug, "title": m.question,
            "active": True, "closed": bool(market_json["closed"]), "archived": False, "negRisk": False,
            "endDate": market_json["endDate"], "volume": m.volume, "liquidity": market_json["liquidityNum"],
            "markets": [{k: v for k, v in market_json.items() if k != "events"}]}


def gamma_negrisk_event(e: Any, markets_json: list[dict[str, Any]]) -> dict[str, Any]:
    """A neg-risk event (``negrisk.SimEvent``) with every outcome's market nested."""
    return {"id": e.gamma_id, "slug": e.slug, "title": e.title, "active": True,
            "closed": all(bool(mj["closed"]) for mj in markets_json), "archived": False,
            "negRisk": True, "enableNegRisk": True, "negRiskAugmented": False, "negRiskMarketID": e.neg_risk_market_id,
            "endDate": e.end_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "volume": round(sum(float(m["volumeNum"]) for m in markets_json), 2),
            "liquidity": round(sum(float(m["liquidityNum"]) for m in markets_json), 4),
            "markets": [{k: v for k, v in mj.items() if k != "events"} for mj in markets_json]}


def clob_market(m: SimMarket, winner: str | None = None) -> dict[str, Any]:
    """``winner``: the winning token id of a resolved market (``closed``, ``winner: true``)."""
    return {
        "condition_id": m.condition_id, "question_id": m.question_id, "question": m.question,
        "market_slug": m.slug, "description": f"Simulated market: {m.question}",
        "tokens": [{"token_id": t.token_id, "outcome": t.outcome, "price": t.mid if winner is None else float(t.token_id == winner),
                    "winner": t.token_id == winner} for t in m.tokens],
        "minimum_order_size": m.yes.min_size, "minimum_tick_size": m.yes.tick, "neg_risk": m.neg_risk,
        "neg_risk_market_id": m.neg_risk_market_id, "neg_risk_request_id": "", "accepting_orders": winner is None,
        "active": True, "closed": winner is not None, "archived": False, "enable_order_book": True,
        "end_date_iso": m.end_date.strftime("%Y-%m-%dT%H:%M:%SZ"), "maker_base_fee": 0, "taker_base_fee": 0,
        "seconds_delay": m.seconds_delay, "fpmm": "", "icon": "", "image": "", "tags": [],
        "rewards": {"rates": None, "min_size": 0, "max_spread": 0},
    }


def clob_market_compact(m: SimMarket) -> dict[str, Any]:
    return {"c": m.condition_id, "t": [{"t": t.token_id, "o": t.outcome} for t in m.tokens], "mts": m.yes.tick,
            "fd": {"r": m.fee_rate, "e": m.fee_exponent, "to": True}, "mbf": 0, "tbf": 0, "r": None,
            "ao": True, "mos": m.yes.min_size, "sd": 0, **({"nr": True} if m.neg_risk else {})}


def open_order(o: Order) -> dict[str, Any]:
    return {
        "id": o.id, "status": o.status, "owner": o.owner, "maker_address": o.maker_address, "market": o.condition_id,
        "asset_id": o.token_id, "side": o.side, "original_size": num(o.size), "size_matched": num(o.size_matched),
        "price": num(o.price), "associate_trades": [f.trade_id for f in o.fills], "outcome": o.outcome,
        "created_at": int(o.created_at), "expiration": str(o.expiration), "order_type": o.order_type,
    }


def l2_trade(o: Order, f: Fill) -> dict[str, Any]:
    """A ``/data/trades`` row for one fill of one of our orders (as taker or maker)."""
    other = "SELL" if o.side == "BUY" else "BUY"
    counter = {"order_id": "0x" + hashlib.sha256(f.trade_id.encode()).hexdigest(), "owner": "",
               "maker_address": CROWD_ADDRESS, "matched_amount": num(f.size), "price": num(f.price),
               "fee_rate_bps": "0", "asset_id": o.token_id, "outcome": o.outcome, "side": other}
    ours = {"order_id": o.id, "owner": o.owner, "maker_address": o.maker_address, "matched_amount": num(f.size),
            "price": num(f.price), "fee_rate_bps": "0", "asset_id": o.token_id, "outcome": o.outcome,
            "side": o.side}
    taker = f.role == "TAKER"
    return {
        "id": f.trade_id, "taker_order_id": o.id if taker else counter["order_id"], "market": o.condition_id,
        "asset_id": o.token_id, "side": o.side if taker else other, "size": num(f.size), "fee_rate_bps": "0",
        "price": num(f.price), "status": f.status, "match_time": str(int(f.ts)),
        "last_update": str(int(f.updated or f.ts)), "outcome": o.outcome, "bucket_index": 0, "owner": o.owner,
        "maker_address": o.maker_address, "maker_orders": [counter] if taker else [ours],
        "transaction_hash": f.tx_hash if f.status in ON_CHAIN else "",  # no hash before it is sent to the chain
        "trader_side": f.role,  # no fee field: the venue charges it from the balance and does not say it (F1)
    }
