"""Gamma keyset pages, market versions and the market channel's market_resolved, against fixtures in
the documented shapes (sdk-wire §9.1 and §11.1, docs/venue.md G1-G3, V1, Z2), and against the SDK's
own decoders of the same fixtures (the hand-written ones must read them alike)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.messages import Signal, decode
from shared.venue import sdk_reference
from shared.venue.errors import UnknownMarketVersion, VenueRejected
from shared.venue.gamma import TokenMeta, parse_markets, token_meta
from shared.venue.gamma_keyset import IDS_PER_QUERY, outcome_id_queries, parse_keyset_page
from shared.venue.ids import outcome, v2_condition_id, v2_position_id
from shared.venue.market_ws import MarketResolved, decode_frame

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "polymarket"
V1_YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
V2_CID = "0x017a1c5e0f93b24d6e8a1f00c3b5d2e917000000000000000000000000000000"


def page() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "gamma_markets_keyset.json").read_text())
    return body


def test_a_keyset_page_of_both_systems_gives_each_market_its_version_and_outcome_ids() -> None:
    got = parse_keyset_page(page(), "markets")
    assert got.next_cursor == "eyJpZCI6MTYwMDAwMX0"
    (fed, ecb), bad = parse_markets(got.items)
    assert bad == []
    assert (fed.version, fed.token_ids[0], fed.min_order_size) == ("v1", V1_YES, 5.0)
    # a v2 market has positionIds and no clobTokenIds: its outcomes are its position ids
    assert ecb.version == "v2"
    assert ecb.token_ids == (v2_position_id(V2_CID, 0), v2_position_id(V2_CID, 1))
    assert (ecb.condition_id, ecb.min_order_size, ecb.tick_size) == (V2_CID, 15.0, 0.01)
    assert [outcome(t, ecb.version).system for t in ecb.token_ids] == ["v2", "v2"]


def test_the_hand_written_page_decoder_reads_what_the_sdk_reads() -> None:
    ours, _ = parse_markets(parse_keyset_page(page(), "markets").items)
    sdk, cursor = sdk_reference.markets_page(page())
    assert cursor == parse_keyset_page(page(), "markets").next_cursor
    assert [(m.id, m.version, m.token_ids, m.condition_id, m.min_order_size, m.tick_size, m.neg_risk) for m in ours] \
        == [(v.id, v.version, v.outcome_ids, v.condition_id, v.min_order_size, v.tick_size, v.neg_risk)
            for v in map(sdk_reference.market_view, sdk)]


@pytest.mark.parametrize("body", [
    {"markets": []},  # last page: no next_cursor
    {"markets": [], "next_cursor": None},
])
def test_a_page_without_a_cursor_is_the_last(body: dict[str, Any]) -> None:
    assert parse_keyset_page(body, "markets").next_cursor is None


@pytest.mark.parametrize("body", [
    [],  # the offset list's bare array is not a keyset page
    {"events": []},  # the other list's key
    {"markets": "[]"},
    {"markets": [], "next_cursor": ""},  # an empty cursor is an error (the SDK refuses it too)
    {"markets": [], "next_cursor": 7},
])
def test_anything_else_is_refused(body: Any) -> None:
    with pytest.raises(VenueRejected):
        parse_keyset_page(body, "markets")


def test_outcome_ids_are_looked_up_by_the_filter_of_their_namespace_at_most_100_a_query() -> None:
    v2 = [v2_position_id(v2_condition_id(1, bytes([i])), 0) for i in range(3)]
    v1 = [str(int(V1_YES) + i) for i in range(IDS_PER_QUERY + 1)]
    queries = outcome_id_queries([*v1, v2[0], v1[0], *v2[1:]])  # repeats are asked once
    names = [{name for name, _ in q} for q in queries]
    assert names == [{"clob_token_ids", "version"}, {"clob_token_ids", "version"}, {"position_ids", "version"}]
    assert [sum(1 for name, _ in q if name != "version") for q in queries] == [IDS_PER_QUERY, 1, 3]
    assert all(("version", "v1") in q and ("version", "v2") in q for q in queries)  # both systems, always


def test_a_version_polyfleet_does_not_know_is_kept_so_the_token_can_be_refused_by_name() -> None:
    row = {**page()["markets"][0], "version": "V3"}
    (m,), bad = parse_markets([row])
    assert bad == []
    assert (m.version, m.token_ids[0]) == ("v3", V1_YES)
    with pytest.raises(UnknownMarketVersion) as info:
        outcome(m.token_ids[0], m.version, m.id)
    assert "fix:" in str(info.value)
    # no version at all is a v1 (CTF) market: every market listed before Protocol V2 was one
    (old,), _ = parse_markets([{k: v for k, v in page()["markets"][0].items() if k != "version"}])
    assert old.version == "v1"
    # a v2 market without positionIds has no outcomes: refused, counted (clobTokenIds are not its ids)
    ecb = {**page()["markets"][1], "clobTokenIds": json.dumps([V1_YES, "1"])}
    del ecb["positionIds"]
    assert parse_markets([ecb])[0] == []


def test_token_metadata_keeps_the_market_version_and_old_hashes_read_as_v1() -> None:
    (_, ecb), _ = parse_markets(page()["markets"])
    meta = token_meta(ecb, ecb.token_ids[1])
    assert (meta.version, meta.outcome, meta.sibling_token, meta.min_order_size) == ("v2", "No", ecb.token_ids[0], 15.0)
    assert meta.to_hash()["version"] == "v2"
    assert TokenMeta.from_hash(meta.to_hash()) == meta
    old = {k: v for k, v in meta.to_hash().items() if k != "version"}  # written before the field existed
    assert TokenMeta.from_hash(old) is not None
    assert TokenMeta.from_hash(old).version == "v1"  # type: ignore[union-attr]


def test_signals_carry_the_market_version_and_version_1_entries_still_decode() -> None:
    sig = Signal(id="s", ts_event=1, ts_init=2, producer="p", side="BUY", token_id="1", account="", size=0,
                 price=0.5, source="screen", market_version="v2")
    fields = sig.encode()
    assert (fields["v"], fields["market_version"]) == ("2", "v2")
    assert decode(fields) == sig
    old = {k: v for k, v in fields.items() if k != "market_version"} | {"v": "1"}  # a version-1 producer's entry
    got = decode(old)
    assert isinstance(got, Signal)
    assert got.market_version is None  # unknown: the orchestrator counts it as v1


def test_market_resolved_reads_as_the_sdk_reads_it() -> None:
    text = (FIXTURES / "ws_market_resolved.json").read_text()
    (ours,) = decode_frame(text)
    (sdk,) = sdk_reference.market_frame(text)
    assert isinstance(ours, MarketResolved)
    p = sdk.payload
    assert (ours.market, ours.market_id, ours.asset_ids, ours.winning_asset_id, ours.winning_outcome) == (
        p.market, p.id, p.asset_ids, p.winning_asset_id, p.winning_outcome)
    assert ours.timestamp == int(p.timestamp.timestamp() * 1000)
