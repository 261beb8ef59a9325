"""The venue room's Gamma keyset reader against the sim's keyset endpoints (docs/venue.md G1-G2),
with page sizes small enough that every walk crosses pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from harness import SimExchangeProcess
from shared.venue.environment import fetch_sim_environment
from shared.venue.errors import VenueRejected
from shared.venue.gamma import parse_markets
from shared.venue.gamma_keyset import BOTH_SYSTEMS, outcome_id_queries, read_keyset


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim({"sim_exchange": {"markets": 7, "negrisk_events": 1}})


@pytest.fixture
def markets(sim: SimExchangeProcess) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()
    return out


async def test_keyset_pages_walk_every_market_of_both_systems_once(sim: SimExchangeProcess,
                                                                   markets: list[dict[str, Any]]) -> None:
    gamma = (await fetch_sim_environment(sim.url)).url("gamma_url")
    async with httpx.AsyncClient(timeout=5) as http:
        rows = await read_keyset(http, gamma, "markets", BOTH_SYSTEMS, page_size=2, max_items=1000)
        parsed, bad = parse_markets(rows)
        assert bad == []
        assert sorted(m.id for m in parsed) == sorted(m["gamma_id"] for m in markets)  # each once, across pages
        assert {m.version for m in parsed} == {"v1", "v2"}
        by_id = {m.id: m for m in parsed}
        for m in markets:
            assert by_id[m["gamma_id"]].token_ids == tuple(t["token_id"] for t in m["tokens"])
        # without a version the venue lists v1 (CTF) markets only: why every reader asks for both
        plain = await read_keyset(http, gamma, "markets", [], page_size=3, max_items=1000)
        assert {str(row.get("version")) for row in plain} == {"v1"}
        first3 = await read_keyset(http, gamma, "markets", BOTH_SYSTEMS, page_size=2, max_items=3)
        assert [row["id"] for row in first3] == [row["id"] for row in rows[:3]]  # stops at max_items mid-page
        events = await read_keyset(http, gamma, "events", [("closed", "false"), *BOTH_SYSTEMS], page_size=2,
                                   max_items=1000)
        nested = {str(m["id"]) for e in events for m in e["markets"]}
        assert nested == {m["gamma_id"] for m in markets}


async def test_markets_are_found_by_their_outcome_ids_of_either_system(sim: SimExchangeProcess,
                                                                       markets: list[dict[str, Any]]) -> None:
    gamma = (await fetch_sim_environment(sim.url)).url("gamma_url")
    wanted = {m["gamma_id"]: m["tokens"][1]["token_id"] for m in markets}
    found: list[Any] = []
    async with httpx.AsyncClient(timeout=5) as http:
        for query in outcome_id_queries(list(wanted.values())):
            found += await read_keyset(http, gamma, "markets", query, page_size=100, max_items=100)
    parsed, _ = parse_markets(found)
    assert {m.id: m.token_ids[1] for m in parsed} == wanted


async def test_the_sunset_offset_lists_and_offset_paging_are_refused(sim: SimExchangeProcess) -> None:
    gamma = (await fetch_sim_environment(sim.url)).url("gamma_url")
    async with httpx.AsyncClient(timeout=5) as http:
        for path in ("markets", "events"):
            resp = await http.get(f"{gamma}/{path}", params={"limit": 10, "offset": 0})
            assert resp.status_code == 404
            assert f"/{path}/keyset" in resp.text
        with pytest.raises(VenueRejected):
            await read_keyset(http, gamma, "markets", [("offset", "2")], page_size=2, max_items=10)
