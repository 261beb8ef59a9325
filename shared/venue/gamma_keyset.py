"""Gamma's keyset lists: ``/markets/keyset`` and ``/events/keyset`` (docs/venue.md G1-G2).

The offset lists ``/markets`` and ``/events`` were sunset on 2026-05-01. The keyset endpoints
take ``limit`` (at most 100 markets or 500 events a page) and, from the second page on,
``after_cursor`` = the previous answer's ``next_cursor``; they answer
``{"markets"|"events": [...], "next_cursor": "..."}``, with ``next_cursor`` absent (or null) on
the last page. An empty-string cursor is an error, as in the SDK (``_make_keyset_parser``), and a
cursor the walk already sent would loop forever, so it ends the walk with an error too.

Hand-written rather than the SDK's ``list_markets``/``list_events`` paginators: the screener's
refresh decodes each page into pydantic models with Decimal fields before polyfleet can read
them, at several times the cost of :func:`shared.venue.gamma.parse_markets` (docs/benchmarks.md,
"Venue reads"); the SDK also drops non-binary markets silently, where polyfleet counts what it
skips. The query and answer shapes are the SDK's (sdk-wire §9.1), and a unit test checks both
decoders read the same markets from one page.

Both systems are asked for explicitly (``version=v1&version=v2``): without it the venue lists
v1 (CTF) markets only (the SDK's docstring: "Omitting version uses the current server default of
CTF markets").

Failures are the venue room's errors: :class:`VenueUnavailable` (network, 429, 5xx: try the next
refresh) and :class:`VenueRejected` (another status; :class:`BadKeysetPage`, an answer that is not a keyset
page, is also an :class:`~shared.input_errors.InputError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from shared.input_errors import InputError
from shared.venue.errors import VenueRejected, VenueUnavailable
from shared.venue.ids import in_v2_namespace

MARKETS_PAGE_MAX = 100
EVENTS_PAGE_MAX = 500
BOTH_SYSTEMS: tuple[tuple[str, str], ...] = (("version", "v1"), ("version", "v2"))
IDS_PER_QUERY = 100  # clob_token_ids / position_ids / condition_ids values one query may carry (G1)
RETRYABLE_STATUS = frozenset({425, 429})

ItemsKey = Literal["markets", "events"]
Params = Sequence[tuple[str, str | int]]


class BadKeysetPage(VenueRejected, InputError):
    """An answer that is not a keyset page (or repeats a cursor): the venue's refusal, and bad input."""


@dataclass(frozen=True, slots=True)
class KeysetPage:
    items: list[Any]
    next_cursor: str | None  # None: this was the last page


def parse_keyset_page(body: Any, items_key: ItemsKey) -> KeysetPage:
    """One keyset answer -> its items and the cursor of the next page. Raises BadKeysetPage."""
    if not isinstance(body, dict):
        raise BadKeysetPage(f"Gamma /{items_key}/keyset answered a {type(body).__name__}, not a keyset page")
    items = body.get(items_key)
    if not isinstance(items, list):
        raise BadKeysetPage(f"Gamma /{items_key}/keyset page has no {items_key!r} array")
    cursor = body.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or cursor == ""):
        raise BadKeysetPage(f"Gamma /{items_key}/keyset next_cursor must be a non-empty string, got {cursor!r}")
    return KeysetPage(items, cursor)


async def read_keyset(http: httpx.AsyncClient, gamma_url: str, items_key: ItemsKey, params: Params,
                      page_size: int, max_items: int, timeout: float | None = None) -> list[Any]:
    """Every item of a keyset list (at most ``max_items``), page by page."""
    limit = MARKETS_PAGE_MAX if items_key == "markets" else EVENTS_PAGE_MAX
    if not 0 < page_size <= limit:
        raise ValueError(f"/{items_key}/keyset serves at most {limit} a page, not {page_size}")
    url = f"{gamma_url.rstrip('/')}/{items_key}/keyset"
    out: list[Any] = []
    cursor: str | None = None
    sent: set[str] = set()
    while len(out) < max_items:
        query: list[tuple[str, str | int]] = [*params, ("limit", min(page_size, max_items - len(out)))]
        if cursor is not None:
            query.append(("after_cursor", cursor))
        page = parse_keyset_page(await _get(http, url, query, timeout), items_key)
        out.extend(page.items)
        if page.next_cursor is None:
            break
        if page.next_cursor in sent:
            raise BadKeysetPage(f"Gamma /{items_key}/keyset repeated cursor {page.next_cursor[:40]!r}")
        sent.add(cursor := page.next_cursor)
    return out[:max_items]


async def _get(http: httpx.AsyncClient, url: str, query: list[tuple[str, str | int]], timeout: float | None) -> Any:
    what = "GET " + url.rsplit("/", 2)[-2] + "/keyset"
    try:
        resp = await http.get(url, params=tuple(query),
                              timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout)
    except httpx.HTTPError as exc:
        raise VenueUnavailable(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    if resp.status_code in RETRYABLE_STATUS or resp.status_code >= 500:
        raise VenueUnavailable(f"{what} -> {resp.status_code}: {resp.text[:120]}", resp.status_code)
    if resp.status_code != 200:
        raise VenueRejected(f"{what} -> {resp.status_code}: {resp.text[:120]}", resp.status_code)
    try:
        return resp.json()
    except ValueError as exc:
        raise BadKeysetPage(f"{what}: body is not JSON: {resp.text[:80]!r}") from exc


def outcome_id_queries(outcome_ids: Sequence[str]) -> list[list[tuple[str, str]]]:
    """The ``/markets/keyset`` queries that find the markets of ``outcome_ids``, at most
    :data:`IDS_PER_QUERY` ids each, both systems asked for.

    A v1 outcome is a ``clobTokenIds`` entry (filter ``clob_token_ids``), a v2 outcome a
    ``positionIds`` entry (filter ``position_ids``). Looking a bare id up, its market's version is
    not known yet, so the filter is picked by the id's namespace (the rule the SDK signs by:
    docs/venue.md V1, shared.venue.ids.in_v2_namespace); the market that comes back then says its
    version, which is what polyfleet goes by."""
    by_filter: dict[str, list[str]] = {"clob_token_ids": [], "position_ids": []}
    for oid in dict.fromkeys(outcome_ids):
        by_filter["position_ids" if in_v2_namespace(oid) else "clob_token_ids"].append(oid)
    queries: list[list[tuple[str, str]]] = []
    for name, ids in by_filter.items():
        for i in range(0, len(ids), IDS_PER_QUERY):
            queries.append([*((name, oid) for oid in ids[i:i + IDS_PER_QUERY]), *BOTH_SYSTEMS])
    return queries
