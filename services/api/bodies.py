"""The request bodies of the API's control routes: strict (unknown fields refused), bounded, and
every text an operator sends checked before it reaches ``pf:control``."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def printable_key(v: str) -> bool:
    """A blacklist key as an operator may give it: 1-200 characters, none of them a control character."""
    return bool(v) and len(v) <= 200 and not _CONTROL_CHARS.search(v)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="why (recorded in the audit event)")
    wait: bool = Field(True, description="wait (api.control_wait_sec) until the orchestrator applied it")


class StopBody(Body):
    force: bool = Field(False, description="cancel orders and stop now, keeping the position (default: liquidate)")


class HaltBody(Body):
    mode: Literal["halt", "reduce_only"] = "halt"


class DrainBody(Body):
    undo: bool = False


class BlacklistBody(Body):
    key: str = Field(..., min_length=1, max_length=200,
                     description="token id, condition id, slug, source account, kw:<keyword> or re:<regex>")
    ttl_sec: float = Field(0.0, ge=0, le=10 * 365 * 86400, description="expire after seconds (0 = never)")

    @field_validator("key")
    @classmethod
    def _printable(cls, v: str) -> str:
        v = v.strip()
        if not v or _CONTROL_CHARS.search(v):
            raise ValueError("key must be printable text")
        if v.startswith("re:"):
            try:
                re.compile(v[3:])
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from exc
        return v


class HandledResetBody(Body):
    token_id: str = Field("", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.:\-]{0,127})?$")
    all: bool = False

    @model_validator(mode="after")
    def _one_or_all(self) -> HandledResetBody:
        if bool(self.token_id) == self.all:
            raise ValueError("give either token_id or all=true")
        return self
