"""The collector's venue reads: polyfleet's hand-written decoders against the SDK's, same answers.

``uv run python -m bench.bench_venue_reads [--rounds 300]``

1. A ``/markets/keyset`` page of 100 markets (the screener's page; the metadata cache's answers are
   the same shape), half v1 and half v2: ``json.loads`` + ``parse_keyset_page`` +
   ``parse_markets`` (shared.venue) against ``json.loads`` + the SDK's keyset page parser
   (``shared.venue.sdk_reference.markets_page``, what ``AsyncPublicClient.list_markets`` runs per page).
2. A page of 500 trade rows (the poller's ``copytrade.page_size`` default): v1 ``/trades`` rows
   through ``parse_trades`` against the same trades as Data API v2 ``/v2/trades`` rows through the
   SDK's page parser (what ``list_trades`` runs per page).

Both sides parse the same body text from scratch each round; per-page ms p50 / p99. The network
round trip (the same httpx for both) is left out: it is the part neither decoder changes.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.machine import describe, percentiles
from shared.venue import sdk_reference
from shared.venue.data_api import parse_trades
from shared.venue.gamma import parse_markets
from shared.venue.gamma_keyset import parse_keyset_page
from shared.venue.ids import v2_condition_id, v2_position_id

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "polymarket"
# Real Gamma markets carry a description of a few hundred characters: both sides read past it.
DESCRIPTION = ("This market will resolve to \"Yes\" if the stated event happens by the end date, per the "
               "resolution source named below; otherwise it resolves to \"No\". ") * 4


def gamma_page(n: int = 100) -> str:
    v1, v2 = json.loads((FIXTURES / "gamma_markets_keyset.json").read_text())["markets"]
    markets = []
    for i in range(n):
        if i % 2:
            cid = v2_condition_id(1, i.to_bytes(16, "big"))
            ids = {"positionIds": json.dumps([v2_position_id(cid, 0), v2_position_id(cid, 1)]), "conditionId": cid}
            markets.append({**v2, **ids, "id": str(2_000_000 + i), "description": DESCRIPTION})
        else:
            yes = int(json.loads(v1["clobTokenIds"])[0]) - i
            ids = {"clobTokenIds": json.dumps([str(yes), str(yes - 1_000_003)])}
            markets.append({**v1, **ids, "id": str(1_000_000 + i), "description": DESCRIPTION})
    return json.dumps({"markets": markets, "next_cursor": "eyJpZCI6IjEwMDAwOTkifQ"})


def trade_pages(n: int = 500) -> tuple[str, str]:
    """The same ``n`` trades as a v1 ``/trades`` array and as a v2 ``/v2/trades`` page."""
    base = json.loads((FIXTURES / "data_api_trades.json").read_text())[0]
    v1 = [{**base, "size": 5 + i, "timestamp": base["timestamp"] - i, "transactionHash": f"0x{i:064x}"}
          for i in range(n)]
    v2 = [{"proxy_wallet": r["proxyWallet"], "token_id": r["asset"], "condition_id": r["conditionId"],
           "side": r["side"], "size": r["size"], "price": r["price"], "timestamp": r["timestamp"],
           "transaction_hash": r["transactionHash"], "title": r["title"], "slug": r["slug"], "icon": r["icon"],
           "event_slug": r["eventSlug"], "outcome": r["outcome"], "outcome_index": r["outcomeIndex"],
           "name": r["name"], "pseudonym": r["pseudonym"], "bio": r["bio"], "profile_image": r["profileImage"],
           "profile_image_optimized": r["profileImageOptimized"]} for r in v1]
    return json.dumps(v1), json.dumps({"data": v2, "pagination": {"has_more": True, "next_cursor": "c2"}})


def ours_gamma(text: str) -> int:
    page = parse_keyset_page(json.loads(text), "markets")
    return len(parse_markets(page.items)[0])


def sdk_gamma(text: str) -> int:
    return len(sdk_reference.markets_page(json.loads(text))[0])


def ours_trades(text: str) -> int:
    return len(parse_trades(json.loads(text))[0])


def sdk_trades(text: str) -> int:
    return len(sdk_reference.trades_page(json.loads(text)))


def compare(label: str, ours: tuple[Callable[[str], int], str], sdk: tuple[Callable[[str], int], str],
            rounds: int) -> dict[str, Any]:
    (our_fn, our_text), (sdk_fn, sdk_text) = ours, sdk
    assert our_fn(our_text) == sdk_fn(sdk_text)  # both read every item
    timings: dict[str, list[float]] = {"ours": [], "sdk": []}
    for _ in range(rounds):  # interleaved: both see the same machine state
        for name, fn, text in (("ours", our_fn, our_text), ("sdk", sdk_fn, sdk_text)):
            t0 = time.perf_counter_ns()
            fn(text)
            timings[name].append((time.perf_counter_ns() - t0) / 1e6)
    o, s = percentiles(timings["ours"]), percentiles(timings["sdk"])
    print(f"  {label:44} ours {o['p50']:6.2f} / {o['p99']:6.2f} ms   SDK {s['p50']:6.2f} / {s['p99']:6.2f} ms   "
          f"SDK/ours at p50 {s['p50'] / o['p50']:.1f}x")
    return {"ours": o, "sdk": s}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    print(describe())
    print("per page, p50 / p99:")
    page = gamma_page()
    compare("/markets/keyset, 100 markets (v1 + v2)", (ours_gamma, page), (sdk_gamma, page), args.rounds)
    v1, v2 = trade_pages()
    compare("500 trades (v1 /trades vs SDK /v2/trades)", (ours_trades, v1), (sdk_trades, v2), args.rounds)


if __name__ == "__main__":
    main()
