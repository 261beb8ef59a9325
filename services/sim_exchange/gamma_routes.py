"""Gamma under ``/gamma``: the keyset lists the venue serves today, single-market lookups, and the
sunset offset lists behind ``sim_exchange.legacy_gamma_lists`` (docs/venue.md G1-G3).

* ``GET /markets/keyset`` (``limit`` ≤ 100) and ``GET /events/keyset`` (``limit`` ≤ 500):
  ``after_cursor`` in, ``{"markets"|"events": [...], "next_cursor": ...}`` out, ``next_cursor``
  absent on the last page; ``offset`` is refused. Filters: ``id``, ``slug``, ``condition_ids`` (32-
  or 31-byte v2 ids), ``clob_token_ids``, ``position_ids``, ``question_ids``, ``closed``,
  ``version`` (repeatable), ``resolution_status``, ``order``/``ascending`` and the numeric and
  date ranges. Without ``version`` the venue serves v1 (CTF) only, as the SDK documents — except
  when an id filter names the markets, which the SDK's split/merge/redeem rely on for v2 ones.
* ``GET /markets/{id}`` and ``GET /markets/slug/{slug}``: one market, any version.
* ``GET /markets`` and ``GET /events``: the offset lists, sunset on 2026-05-01; with
  ``legacy_gamma_lists: false`` they answer 404 naming the keyset endpoint, as the venue does.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.sim_exchange import gamma, wire
from services.sim_exchange.market import SimMarket
from services.sim_exchange.state import SimState

MARKETS_PAGE, EVENTS_PAGE = 100, 500
_ID_FILTERS = ("id", "slug", "condition_ids", "clob_token_ids", "position_ids", "question_ids")


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def csv_list(request: Request, name: str) -> list[str]:
    """A list parameter, repeated (``a=1&a=2``, what the SDK sends) or comma-separated."""
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"gamma:{offset}".encode()).decode()


def keyset_page(items: list[dict[str, Any]], request: Request, key: str, max_limit: int) -> dict[str, Any]:
    """One keyset page of ``items``; :class:`gamma.GammaQueryError` for a bad request."""
    q = request.query_params
    if "offset" in q:
        raise gamma.GammaQueryError(f"offset is not supported: page /{key}/keyset with after_cursor")
    try:
        limit = int(q.get("limit") or 20)
    except ValueError as exc:
        raise gamma.GammaQueryError("limit must be an integer") from exc
    if not 1 <= limit <= max_limit:
        raise gamma.GammaQueryError(f"limit must be between 1 and {max_limit}")
    start = 0
    if q.get("after_cursor"):
        try:
            tag, _, number = base64.urlsafe_b64decode(q["after_cursor"].encode()).decode().partition(":")
            start = int(number)
            if tag != "gamma" or start < 0:
                raise ValueError(tag)
        except ValueError as exc:
            raise gamma.GammaQueryError("invalid after_cursor") from exc
    page: dict[str, Any] = {key: items[start:start + limit]}
    if start + limit < len(items):
        page["next_cursor"] = _cursor(start + limit)
    return page


def router(state: SimState) -> APIRouter:
    r = APIRouter(prefix="/gamma")

    def market_json(m: SimMarket, tops: dict[str, tuple[float | None, float | None]]) -> dict[str, Any]:
        return state.gamma.apply(wire.gamma_market(m, tops, state.ctf.winners.get(m.condition_id)))

    def gone(path: str) -> JSONResponse:
        return _err(404, f"GET /{path} was sunset on 2026-05-01: use /{path}/keyset (after_cursor paging)")

    def versions(request: Request) -> set[str]:
        asked = set(csv_list(request, "version"))
        if not asked and not any(request.query_params.get(f) for f in _ID_FILTERS):
            return {"v1"}  # the venue's default: CTF markets only
        return asked or {"v1", "v2"}

    def closed_ok(closed: bool, request: Request) -> bool:
        want = request.query_params.get("closed", "").lower()
        return not want or (want == "true") == closed

    # ---- keyset lists (today's venue) -----------------------------------------------------------
    @r.get("/markets/keyset")
    async def markets_keyset(request: Request) -> Any:
        tokens = set(csv_list(request, "clob_token_ids"))
        positions = set(csv_list(request, "position_ids"))
        cids = {c.condition_id for c in (state.sim.condition(x) for x in csv_list(request, "condition_ids")) if c}
        if csv_list(request, "condition_ids") and not cids:
            return {"markets": []}
        ids, slugs = set(csv_list(request, "id")), set(csv_list(request, "slug"))
        questions = {x.lower() for x in csv_list(request, "question_ids")}
        wanted_versions, status = versions(request), request.query_params.get("resolution_status", "")
        tops = state.tops()
        out = []
        for m in state.sim.markets:
            if m.version not in wanted_versions or (cids and m.condition_id not in cids) or (ids and m.gamma_id not in ids):
                continue
            outcome_ids = {m.yes.token_id, m.no.token_id}
            if (tokens and (m.version != "v1" or not tokens & outcome_ids)) or (
                    positions and (m.version != "v2" or not positions & outcome_ids)):
                continue
            if (slugs and m.slug not in slugs) or (questions and m.question_id.lower() not in questions):
                continue
            row = market_json(m, tops)
            if not closed_ok(bool(row["closed"]), request):
                continue
            if status and (m.version != "v2" or status != ("resolved" if row["closed"] else "active")):
                continue
            out.append(row)
        try:
            q = {k: v for k, v in request.query_params.items() if k != "closed"}
            return keyset_page(gamma.select(out, {**q, "closed": "any"}), request, "markets", MARKETS_PAGE)
        except gamma.GammaQueryError as exc:
            return _err(400, str(exc))

    @r.get("/events/keyset")
    async def events_keyset(request: Request) -> Any:
        ids, slugs = set(csv_list(request, "id")), set(csv_list(request, "slug"))
        wanted_versions = versions(request)
        out = [e for e in all_events() if (not ids or e["id"] in ids) and (not slugs or e["slug"] in slugs)
               and e["version"] in wanted_versions and closed_ok(bool(e["closed"]), request)]
        try:
            return keyset_page(out, request, "events", EVENTS_PAGE)
        except gamma.GammaQueryError as exc:
            return _err(400, str(exc))

    def all_events() -> list[dict[str, Any]]:
        tops = state.tops()
        out = [{**wire.gamma_event(m, market_json(m, tops)), "version": m.version}
               for m in state.sim.markets if not m.neg_risk]
        out += [{**wire.gamma_negrisk_event(e, [market_json(m, tops) for m in e.markets]), "version": "v1"}
                for e in state.events]
        return out

    # ---- one market -----------------------------------------------------------------------------
    @r.get("/markets/slug/{slug}")
    async def market_by_slug(slug: str) -> Any:
        for m in state.sim.markets:
            if m.slug == slug:
                return market_json(m, state.tops())
        return _err(404, "market not found")

    @r.get("/markets/{gamma_id}")
    async def market_by_id(gamma_id: str) -> Any:
        for m in state.sim.markets:
            if gamma_id in (m.gamma_id, m.slug):
                return market_json(m, state.tops())
        return _err(404, "market not found")

    # ---- the sunset offset lists ----------------------------------------------------------------
    def legacy(path: str, request: Request) -> JSONResponse | list[Any] | None:
        """The answer of a sunset list that needs no listing: 404 once gone, [] for closed ones."""
        if not state.cfg.legacy_gamma_lists:
            return gone(path)
        q = request.query_params
        return [] if q.get("closed", "").lower() == "true" or q.get("active", "").lower() == "false" else None

    def offset_page(rows: list[dict[str, Any]], q: Any) -> Any:
        try:
            offset, limit = int(q.get("offset") or 0), int(q.get("limit") or 500)
        except ValueError:
            return _err(400, "limit and offset must be integers")
        return rows[offset:offset + limit]

    @r.get("/markets")
    async def markets_list(request: Request) -> Any:
        if (early := legacy("markets", request)) is not None:
            return early
        q = request.query_params
        tokens, cids = set(csv_list(request, "clob_token_ids")), {c.lower() for c in csv_list(request, "condition_ids")}
        slugs, ids = set(csv_list(request, "slug")), set(csv_list(request, "id"))
        tops = state.tops()
        out = []
        for m in state.sim.markets:
            if tokens and not tokens & {m.yes.token_id, m.no.token_id}:
                continue
            if (cids and m.condition_id.lower() not in cids) or (slugs and m.slug not in slugs):
                continue
            if ids and m.gamma_id not in ids:
                continue
            out.append(market_json(m, tops))
        try:
            return offset_page(gamma.select(out, dict(q)), q)
        except gamma.GammaQueryError as exc:
            return _err(400, str(exc))

    @r.get("/events")
    async def events_list(request: Request) -> Any:
        if (early := legacy("events", request)) is not None:
            return early
        q = request.query_params
        slugs, ids = set(csv_list(request, "slug")), set(csv_list(request, "id"))
        out = [{k: v for k, v in e.items() if k != "version"} for e in all_events()]
        out = [e for e in out if (not slugs or e["slug"] in slugs) and (not ids or e["id"] in ids)]
        if q.get("closed", "").lower() == "false":  # a resolved market's event is closed
            out = [e for e in out if not e["closed"]]
        return offset_page(out, q)

    return r
