"""The tick: top of book for one token, as the gateway publishes it.

Same fields on the ``pf:tick:{token}`` channel (JSON) and in the ``pf:book:{token}`` hash
(strings), so a subscriber that sees a ``seq`` gap re-reads the hash and carries on.
Prices are floats in [0, 1]; a missing side is ``None`` (JSON null, absent from the hash).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True, slots=True)
class Tick:
    token_id: str
    seq: int
    bid: float | None
    ask: float | None
    bid_size: float
    ask_size: float
    last: float | None
    tick_size: float
    ts_event: int  # venue ms
    ts_recv: int  # gateway receive ms
    stale: bool = False  # the gateway has not heard of this token for gateway.stale_after_sec

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Tick:
        return cls._build(json.loads(raw))

    def to_hash(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is None:
                continue
            out[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Tick | None:
        if not h or "token_id" not in h:
            return None
        data: dict[str, object] = dict(h)
        data["stale"] = h.get("stale") == "1"
        return cls._build(data)

    @classmethod
    def _build(cls, d: dict[str, object]) -> Tick:
        def num(name: str) -> float | None:
            v = d.get(name)
            return None if v is None or v == "" else float(v)  # type: ignore[arg-type]

        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            d = {k: v for k, v in d.items() if k in names}
        return cls(
            token_id=str(d["token_id"]),
            seq=int(d["seq"]),  # type: ignore[call-overload]
            bid=num("bid"),
            ask=num("ask"),
            bid_size=num("bid_size") or 0.0,
            ask_size=num("ask_size") or 0.0,
            last=num("last"),
            tick_size=num("tick_size") or 0.01,
            ts_event=int(d["ts_event"]),  # type: ignore[call-overload]
            ts_recv=int(d["ts_recv"]),  # type: ignore[call-overload]
            stale=bool(d.get("stale", False)),
        )
