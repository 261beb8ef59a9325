"""sim_exchange pieces the collector tests stand on: Gamma overrides and filters, bursts,
live-data subscriptions and lapses (pure; no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.sim_exchange.copytrade_admin import burst_rows
from services.sim_exchange.gamma import GammaOverrides, GammaQueryError, select
from services.sim_exchange.livedata import LiveClient, LiveHub
from shared.venue.gamma import parse_market


def gm(i: int, volume: float, end: str, closed: bool = False) -> dict[str, Any]:
    return {"id": str(i), "volumeNum": volume, "volume": str(volume), "liquidityNum": volume / 10,
            "endDate": end, "closed": closed, "active": True, "clobTokenIds": json.dumps([f"{i}1", f"{i}2"]),
            "outcomes": '["Yes", "No"]', "outcomePrices": '["0.5", "0.5"]'}


def test_gamma_list_filters_and_order_follow_the_documented_parameters() -> None:
    ms = [gm(1, 10, "2030-01-01T00:00:00Z"), gm(2, 500, "2030-06-01T00:00:00Z"),
          gm(3, 900, "2031-01-01T00:00:00Z"), gm(4, 1000, "2030-02-01T00:00:00Z", closed=True)]
    assert [m["id"] for m in select(ms, {})] == ["1", "2", "3"]  # closed=false by default
    assert [m["id"] for m in select(ms, {"closed": "true"})] == ["1", "2", "3", "4"]
    assert [m["id"] for m in select(ms, {"volume_num_min": "100", "order": "volumeNum", "ascending": "false"})] == [
        "3", "2"]
    assert [m["id"] for m in select(ms, {"liquidity_num_max": "49"})] == ["1"]
    assert [m["id"] for m in select(ms, {"end_date_min": "2030-03-01T00:00:00Z",
                                         "end_date_max": "2030-12-31T00:00:00Z"})] == ["2"]
    with pytest.raises(GammaQueryError):
        select(ms, {"end_date_min": "soon"})
    with pytest.raises(GammaQueryError):
        select(ms, {"volume_num_min": "lots"})


def test_gamma_overrides_keep_the_wire_shape() -> None:
    over = GammaOverrides()
    over.set("2", {"volumeNum": 7000, "outcomePrices": ["0.3", "0.7"]})
    got = over.apply(gm(2, 500, "2030-06-01T00:00:00Z"))
    assert (got["volume"], got["volumeNum"], got["outcomePrices"]) == ("7000", 7000, '["0.3", "0.7"]')
    assert parse_market(got).prices == (0.3, 0.7)
    assert over.apply(gm(1, 1, "x")) == gm(1, 1, "x")
    over.clear()
    assert over.apply(gm(2, 500, "y"))["volumeNum"] == 500


def test_burst_rows_are_distinct_fills_in_one_second_or_one_transaction() -> None:
    rows = burst_rows(["0xa", "0xb"], 5, "tok", "BUY", 1000, 0, True, 0.5)
    assert len(rows) == 10
    assert {r["timestamp"] for r in rows} == {1000}
    assert len({r["transactionHash"] for r in rows}) == 2  # one per wallet
    assert len({(r["proxyWallet"], r["transactionHash"], r["size"]) for r in rows}) == 10
    spread = burst_rows(["0xa"], 10, "tok", "SELL", 1000, 5, False, 0.5)
    assert [r["timestamp"] for r in spread] == sorted(r["timestamp"] for r in spread)
    assert spread[-1]["timestamp"] == 1004
    assert len({r["transactionHash"] for r in spread}) == 10


class FakeSocket:
    """Stands in for the FastAPI WebSocket object: LiveHub.push only queues text for it."""


def client(hub: LiveHub, subscribe: dict[str, Any]) -> LiveClient:
    c = LiveClient(FakeSocket())  # type: ignore[arg-type]
    hub.clients.add(c)
    LiveHub._on_message(c, json.dumps(subscribe))
    return c


ROW = {"proxyWallet": "0xa", "slug": "m", "eventSlug": "e"}


def test_live_hub_sends_each_subscribed_type_and_lapses() -> None:
    hub = LiveHub()
    both = client(hub, {"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "*"}]})
    other = client(hub, {"action": "subscribe", "subscriptions": [
        {"topic": "activity", "type": "trades", "filters": json.dumps({"market_slug": "zzz"})}]})
    hub.push(ROW)
    kinds = [json.loads(both.queue.get_nowait())["type"] for _ in range(both.queue.qsize())]
    assert kinds == ["trades", "orders_matched"]
    assert other.queue.empty()
    hub.lapse("mute", 60, ["trades"])
    hub.push(ROW)
    assert [json.loads(both.queue.get_nowait())["type"] for _ in range(both.queue.qsize())] == ["orders_matched"]
    hub.clear()
    assert hub.lapse("silent") == 2
    hub.push(ROW)
    assert both.queue.empty()
    LiveHub._on_message(both, json.dumps({"action": "subscribe", "subscriptions": [
        {"topic": "activity", "type": "trades"}]}))
    hub.push(ROW)
    assert both.queue.empty()  # a frozen socket stays frozen, resubscribed or not (docs/venue.md L2)
    fresh = client(hub, {"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"}]})
    hub.push(ROW)
    assert fresh.queue.qsize() == 1  # a new socket gets data again
    with pytest.raises(ValueError):
        hub.lapse("sideways")
