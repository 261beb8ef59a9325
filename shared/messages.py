"""Typed, versioned messages carried on the Redis streams.

Every stream entry is a flat map of human-readable strings (so ``redis-cli XRANGE`` shows it as it
is), always with ``type``, ``v`` (schema version), ``id`` (idempotency key), ``ts_event`` (venue
ms), ``ts_init`` (our ms) and ``producer``. Nested values (strategy parameters, event details) are
JSON text in one field.

Evolution rules: adding a field needs a default; removing or renaming one is a new version (a new
class with the same ``TYPE`` and a higher ``VERSION``). So is a field whose absence an older
consumer would misread (a fill's settlement status: an old orchestrator would book a fill that may
still fail as final; a signal's market version: it would start a v2 market as v1), so that
consumer skips the entry visibly instead. The older versions a build still reads are listed in
:data:`_OLDER`: their entries decode into the current class, the missing fields taking their
defaults. :func:`decode` raises :class:`UnknownMessage` for a type/version it does not know;
consumers log, count, ack and skip it.
"""

from __future__ import annotations

import hashlib
import json
import typing
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.input_errors import InputError

Side = Literal["BUY", "SELL"]
# A venue trade's settlement status (docs/venue.md T1): MATCHED -> MINED -> CONFIRMED, or (the
# transaction failed) RETRYING -> FAILED. Only CONFIRMED and FAILED are final.
TradeStatusName = Literal["MATCHED", "MINED", "RETRYING", "CONFIRMED", "FAILED"]


class MessageError(InputError):
    """A stream entry that cannot become a message: log, count, ack, skip."""


class UnknownMessage(MessageError):
    """Type or version this build does not know."""


class BadMessage(MessageError):
    """Known type and version, but the fields do not validate."""


class Message(BaseModel):
    """Common envelope. Subclasses set TYPE and VERSION and add their fields."""

    # NaN and infinities are refused in every float field: a price or size that is not a number would
    # pass every comparison silently (the fuzz tests found decode accepting "nan").
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    id: str
    ts_event: int
    ts_init: int
    producer: str

    def encode(self) -> dict[str, str]:
        out: dict[str, str] = {"type": self.TYPE, "v": str(self.VERSION)}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, (dict, list)):
                out[name] = json.dumps(value, separators=(",", ":"), sort_keys=True)
            else:
                out[name] = str(value)
        return out


class Signal(Message):
    """A followed wallet traded (or the market screen picked a token): BUY enters, SELL exits.

    Version 2 adds ``market_version``: a version-1 orchestrator would drop it and start a v2
    (Protocol V2) market as a v1 (CTF) one, so it must refuse these entries instead. Version-1
    entries still decode, with ``market_version`` None (their markets are v1: docs/redis-schema.md).
    ``fee_rate``/``fee_exponent`` came later without a version: a reader that drops them leaves the
    worker to read the market's fee schedule from the venue.
    """

    TYPE: ClassVar[str] = "signal"
    VERSION: ClassVar[int] = 2

    side: Side
    token_id: str
    account: str
    size: float
    price: float
    source: str  # poll | rtds | chain | screen | manual  (account is "" for screen)
    condition_id: str = ""
    slug: str = ""
    outcome: str = ""
    title: str = ""
    tx_hash: str = ""
    # A8 token metadata, attached when known (None = not known when the signal was made; every
    # service can also read pf:meta:{token_id}).
    end_date: str | None = None
    tick_size: float | None = None
    neg_risk: bool | None = None
    min_order_size: float | None = None
    sibling_token: str | None = None
    # The Gamma ``version`` of the token's market (docs/venue.md V1): "v1", "v2", or one polyfleet
    # does not know (the orchestrator refuses the token with UnknownMarketVersion). None: not known
    # when the signal was made (no metadata yet, or a version-1 entry): the market counts as v1.
    market_version: str | None = None
    # The market's taker fee schedule (Gamma feeSchedule, docs/venue.md F1): the worker books a
    # taker fill's fee from it. None: not known when the signal was made.
    fee_rate: float | None = None
    fee_exponent: float | None = None


class Command(Message):
    """Orchestrator -> one worker. START carries the merged parameters and the fencing epoch."""

    TYPE: ClassVar[str] = "cmd"

    action: Literal["START", "EXIT", "STOP"]
    token_id: str
    epoch: int
    params: dict[str, Any] = {}
    reason: str = ""


class ControlRequest(Message):
    """Operator request (CLI / API) -> orchestrator."""

    TYPE: ClassVar[str] = "control"

    action: Literal[
        "stop_token", "blacklist_add", "blacklist_remove", "handled_reset",
        "drain_worker", "undrain_worker", "halt", "resume", "unignore",
        "leader_pause", "leader_resume", "redeem_retry",
    ]
    target: str = ""
    reason: str = ""
    force: bool = False
    expires_at: int = 0


class OrderEvent(Message):
    """A worker's order changed state at the venue."""

    TYPE: ClassVar[str] = "order"

    token_id: str
    epoch: int
    worker: str
    intent_id: str
    order_id: str = ""
    side: Side
    price: float
    size: float
    status: Literal["placed", "matched", "cancelled", "rejected"]
    reason: str = ""


class Fill(Message):
    """Shares changed hands for one of our orders in one venue trade.

    v2 adds the trade and its settlement status: ``trade_id`` is the venue's trade id ("" when
    there is none: the paper executor, a fill found by reconciling with the venue; the fill's own
    ``id`` then stands for the trade) and ``status`` the trade's status when the fill was written.
    A fill is pending until its trade is CONFIRMED (a later :class:`TradeStatus` says so) and void
    if it ends FAILED. A v1 entry (older producers) and a v2 fill without a status count as
    CONFIRMED: the paper executor's fills and the old venue path settle at once. What the worker
    writes, exactly: docs/architecture.md "Fills and settlement".
    """

    TYPE: ClassVar[str] = "fill"
    VERSION: ClassVar[int] = 2

    token_id: str
    epoch: int
    worker: str
    order_id: str
    side: Side
    price: float
    size: float
    fee: float = 0.0
    trade_id: str = ""
    status: TradeStatusName = "CONFIRMED"


class TradeStatus(Message):
    """A trade we already wrote a fill for changed settlement status (worker -> ``pf:fills``).

    Applies to every fill of ``trade_id`` on ``token_id``, whether it arrives before or after
    them, and any number of times (``id`` = stable_id("trade", trade_id, status)). ``epoch`` and
    ``worker`` say who saw it; a status is a fact about the trade, so it counts whoever reports it.
    """

    TYPE: ClassVar[str] = "trade"

    token_id: str
    epoch: int
    worker: str
    trade_id: str
    status: TradeStatusName
    tx_hash: str = ""
    reason: str = ""


class SessionReport(Message):
    """Worker -> orchestrator about one token session.

    started: the worker took the token (orders may follow). closed: the session ended and the
    position is liquidated as far as it could be (the token is released). handed_back: the worker
    is stopping and gives the token back for reassignment (position kept, see pf:session).
    failed: the session could not run (the reason says why).
    """

    TYPE: ClassVar[str] = "session"

    token_id: str
    epoch: int
    worker: str
    status: Literal["started", "closed", "handed_back", "failed"]
    position: float = 0.0
    avg_cost: float = 0.0
    realized_pnl: float = 0.0
    reason: str = ""
    # Fills this session wrote to pf:fills before this report (-1: not counted). The streams are
    # read apart, so the orchestrator can meet the report first; it waits for that many fills.
    fills: int = -1


class AuditEvent(Message):
    """Anything a person may want to know later: decisions with reasons, state changes, errors."""

    TYPE: ClassVar[str] = "event"

    kind: str  # e.g. token.started, token.rejected, worker.dead, error
    level: Literal["info", "warning", "error"] = "info"
    token_id: str = ""
    reason: str = ""
    detail: dict[str, Any] = {}


class Resolution(Message):
    """ws_gateway -> orchestrator: the venue resolved a market (market channel ``market_resolved``).

    ``id`` is derived from the condition id, so the same resolution seen on two connections (or by
    two gateways) is applied once. ``winning_token`` is "" when the venue did not name it."""

    TYPE: ClassVar[str] = "resolution"

    condition_id: str
    market_id: str = ""  # Gamma market id
    token_ids: list[str] = []  # the market's outcome ids
    winning_token: str = ""
    winning_outcome: str = ""


class Redemption(Message):
    """redeemer -> orchestrator (``pf:redemptions``): the position of ``token_id`` in a resolved
    market (its ``pf:redeemable`` entry) was redeemed on the venue.

    ``id`` = stable_id("redemption", token_id, condition_id): one per token and resolution, applied
    once. ``shares`` is the wallet's balance of the token just before the redeem (what the venue
    held, settled) and ``payout`` the pUSD it paid ($1 a share of the winner, 0 of a loser);
    ``tx_hash`` is "" when nothing was left to redeem. The orchestrator books the token's own
    position from its ledger (docs/orchestrator.md "Resolved markets")."""

    TYPE: ClassVar[str] = "redemption"

    token_id: str
    condition_id: str
    won: bool
    shares: float = 0.0
    payout: float = 0.0
    tx_hash: str = ""
    market_version: str = "v1"


class Opportunity(Message):
    """arb_scanner -> pf:opportunities (E3): one arbitrage set crossing (or nearly crossing) its threshold.

    One episode per set and kind, from ``open`` to ``close``, shares ``opp_id``; ``update`` is
    sent on a material change (edge, size or verdict). Per-set money fields are in $ per set
    (one share of every leg); ``size`` is in sets. docs/arbitrage.md describes every field.
    """

    TYPE: ClassVar[str] = "opportunity"

    opp_id: str
    status: Literal["open", "update", "close"]
    verdict: Literal["opportunity", "near_miss", "none"]
    kind: Literal["buy_both", "split_sell", "negrisk_buy_all", "negrisk_sell_all"]
    market: str  # condition id (binary) or neg-risk market id (event)
    title: str = ""
    tokens: list[str] = []
    prices: list[float] = []  # best ask (buying) or best bid (selling) per leg
    limits: list[float] = []  # per-leg limit price of the orders that would take ``size``
    top_sum: float = 0.0
    fees: float = 0.0  # taker fees per set at the top prices
    edge: float = 0.0  # per set at the top, after fees
    min_edge: float = 0.0
    size: float = 0.0  # executable sets after haircut, caps and venue minimums (0 = not executable)
    depth: float = 0.0  # sets the book walk found before the haircut
    depth_source: Literal["top", "book"] = "top"  # the tick's top level only, or the venue's full book
    profit: float = 0.0  # $ after fees for ``size`` sets
    score: float = 0.0
    levels_used: int = 0
    end_date: str = ""
    reason: str = ""


MESSAGE_TYPES: tuple[type[Message], ...] = (
    Signal, Command, ControlRequest, OrderEvent, Fill, TradeStatus, SessionReport, AuditEvent, Opportunity,
    Resolution, Redemption,
)
# Older versions still read: (type, version) -> the current class their entries decode into.
_OLDER: dict[tuple[str, int], type[Message]] = {
    ("fill", 1): Fill,  # v1 had no trade_id/status: decodes as a CONFIRMED fill without a trade id
    ("signal", 1): Signal,  # v1 had no market_version: decodes with None (a v1 market)
}
_REGISTRY: dict[tuple[str, int], type[Message]] = {
    **{(cls.TYPE, cls.VERSION): cls for cls in MESSAGE_TYPES}, **_OLDER,
}


def _json_fields(cls: type[Message]) -> set[str]:
    names = set()
    for name, info in cls.model_fields.items():
        origin = typing.get_origin(info.annotation) or info.annotation
        if origin in (dict, list):
            names.add(name)
    return names


_JSON_FIELDS = {cls: _json_fields(cls) for cls in MESSAGE_TYPES}


def decode(fields: dict[str, str] | dict[bytes, bytes]) -> Message:
    """Turn a stream entry's fields into a message, or raise :class:`MessageError`."""
    raw = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    mtype = raw.pop("type", "")
    try:
        version = int(raw.pop("v", "0"))
    except ValueError as exc:
        raise UnknownMessage(f"bad version in entry of type {mtype!r}") from exc
    cls = _REGISTRY.get((mtype, version))
    if cls is None:
        raise UnknownMessage(f"unknown message type {mtype!r} v{version}")
    # Fields this build does not know come from a newer producer that added them (with a
    # default, per the evolution rules): drop them rather than skip the whole message.
    data: dict[str, Any] = {k: v for k, v in raw.items() if k in cls.model_fields}
    for name in _JSON_FIELDS[cls]:
        if name in data:
            try:
                data[name] = json.loads(data[name])
            except json.JSONDecodeError as exc:
                raise BadMessage(f"{mtype} v{version}: field {name} is not JSON") from exc
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise BadMessage(f"{mtype} v{version}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc


def stable_id(*parts: object) -> str:
    """A short deterministic id from parts: the same inputs always give the same id."""
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:24]
