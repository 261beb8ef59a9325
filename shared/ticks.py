"""The tick: top of book for one token, as the gateway publishes it.

Same fields on the ``pf:tick:{token}`` channel (JSON) and in the ``pf:book:{token}`` hash
(strings), so a subscriber that sees a ``seq`` gap re-reads the hash and carries on.
Prices are floats in [0, 1]; a missing side is ``None`` (JSON null, absent from the hash).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # the C string escaper json uses


def _jnum(value: float | None) -> str:
    """A JSON number exactly as ``json.dumps`` writes it (``repr``), or null."""
    if value is None:
        return "null"
    if not math.isfinite(value):
        raise ValueError(f"tick field is not finite: {value!r}")
    return repr(float(value))


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
        # Hand-built: the gateway encodes every tick, and asdict() + json.dumps() cost ~4x this.
        # Decodes to the same object as json.dumps(asdict(self)) (a unit test compares).
        return (f'{{"token_id":{encode_basestring(self.token_id)},"seq":{int(self.seq)},'
                f'"bid":{_jnum(self.bid)},"ask":{_jnum(self.ask)},'
                f'"bid_size":{_jnum(self.bid_size)},"ask_size":{_jnum(self.ask_size)},'
                f'"last":{_jnum(self.last)},"tick_size":{_jnum(self.tick_size)},'
                f'"ts_event":{int(self.ts_event)},"ts_recv":{int(self.ts_recv)},'
                f'"stale":{"true" if self.stale else "false"}}}')

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

    def hash_args(self) -> list[str]:
        """``to_hash()`` flattened to HSET's field/value arguments, built without asdict()."""
        out = ["token_id", self.token_id, "seq", str(self.seq)]
        for name, v in (("bid", self.bid), ("ask", self.ask), ("last", self.last)):
            if v is not None:
                out += (name, repr(float(v)))
        out += ("bid_size", repr(float(self.bid_size)), "ask_size", repr(float(self.ask_size)),
                "tick_size", repr(float(self.tick_size)), "ts_event", str(self.ts_event),
                "ts_recv", str(self.ts_recv), "stale", "1" if self.stale else "0")
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
