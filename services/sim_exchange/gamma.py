"""Gamma ``/markets`` behaviour beyond the market model: per-market overrides and list filters (pure).

Tests and demos need markets that change in ways the random walk never makes (volume jumps,
an end date moves into a window, a market closes): ``PATCH /_sim/gamma/{id}`` stores an override
of any Gamma fields, applied to every Gamma answer. List filters follow the documented query
parameters (reference §2.2): ``volume_num_min/max``, ``liquidity_num_min/max``,
``end_date_min/max`` (ISO-8601), ``closed``/``active``, and ``order`` (a field name) with
``ascending``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Fields whose Gamma form is JSON text: an override may give a real list, which is encoded here.
_JSON_TEXT = ("outcomes", "outcomePrices", "clobTokenIds")
_NUMERIC_TWINS = {"volumeNum": "volume", "liquidityNum": "liquidity"}


class GammaQueryError(ValueError):
    """A bad query parameter (answered with 400)."""


def _date(value: str, name: str) -> datetime:
    try:
        out = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise GammaQueryError(f"{name} must be an ISO-8601 date-time") from exc
    return out if out.tzinfo else out.replace(tzinfo=UTC)


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise GammaQueryError(f"{name} must be a number") from exc


@dataclass
class GammaOverrides:
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    def set(self, gamma_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        patch = dict(fields)
        for name in _JSON_TEXT:
            if isinstance(patch.get(name), list):
                patch[name] = json.dumps(patch[name])
        for num_name, text_name in _NUMERIC_TWINS.items():  # keep volume and volumeNum in step
            if num_name in patch and text_name not in patch:
                patch[text_name] = str(patch[num_name])
            elif text_name in patch and num_name not in patch:
                patch[num_name] = float(patch[text_name])
        self.by_id.setdefault(gamma_id, {}).update(patch)
        return self.by_id[gamma_id]

    def clear(self) -> None:
        self.by_id.clear()

    def apply(self, market: dict[str, Any]) -> dict[str, Any]:
        patch = self.by_id.get(str(market.get("id")))
        return {**market, **patch} if patch else market


def select(markets: list[dict[str, Any]], q: dict[str, str]) -> list[dict[str, Any]]:
    """The markets matching the list filters, in the asked order (before offset/limit)."""
    out = markets
    if q.get("closed", "false").lower() == "false":
        out = [m for m in out if not m.get("closed")]
    if q.get("active", "").lower() == "true":
        out = [m for m in out if m.get("active")]
    for name, key, lower in (("volume_num_min", "volumeNum", True), ("volume_num_max", "volumeNum", False),
                             ("liquidity_num_min", "liquidityNum", True),
                             ("liquidity_num_max", "liquidityNum", False)):
        if q.get(name):
            bound = _float(q[name], name)
            out = [m for m in out if (float(m.get(key) or 0) >= bound if lower else float(m.get(key) or 0) <= bound)]
    for name, lower in (("end_date_min", True), ("end_date_max", False)):
        if q.get(name):
            when = _date(q[name], name)
            out = [m for m in out if m.get("endDate")
                   and ((_date(m["endDate"], "endDate") >= when) if lower else (_date(m["endDate"], "endDate") <= when))]
    order = q.get("order", "").split(",")[0].strip()
    if order:
        descending = q.get("ascending", "true").lower() == "false"
        have = [m for m in out if m.get(order) is not None]
        out = sorted(have, key=lambda m: m[order], reverse=descending) + [m for m in out if m.get(order) is None]
    return out
