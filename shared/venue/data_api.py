"""Data API trade rows (reference §1.1) -> typed trades, tolerant of the variants seen in the wild.

Rows come from ``GET /trades`` (and, later, ``/activity`` and the live-data socket), so the
parser accepts camel and snake case (``asset``/``token_id``/``asset_id``/``tokenId``,
``transactionHash``/``transaction_hash``), numbers as strings and millisecond timestamps. A row
that still does not fit is skipped and counted by :func:`parse_trades`; it never raises.

One settlement transaction can hold several fills, so the de-duplication key is
(transaction hash, asset, side, size, price), with numbers in one canonical spelling so ``"5"``
and ``5.0`` give the same key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from shared.input_errors import InputError
from shared.messages import stable_id

Side = Literal["BUY", "SELL"]

# Normalised (lower case, no "_") field names, in order of preference.
_ACCOUNT = ("proxywallet", "user", "wallet")
_TOKEN = ("asset", "tokenid", "assetid")
_TIMESTAMP = ("timestamp", "ts", "time")
_CONDITION = ("conditionid", "market")
_TX = ("transactionhash", "txhash", "hash")
_MS_THRESHOLD = 100_000_000_000  # above this an epoch value is ms (seconds reach it in year 5138)


class BadTrade(InputError):
    """A row that cannot be a trade."""


@dataclass(frozen=True, slots=True)
class Trade:
    account: str  # proxy wallet, lower case ("" when the row does not say)
    side: Side
    token_id: str
    size: float
    price: float
    timestamp: int  # epoch seconds
    condition_id: str = ""
    slug: str = ""
    outcome: str = ""
    title: str = ""
    tx_hash: str = ""

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        # Without a hash (never seen from the real API) the second stands in, so two equal fills
        # in different seconds are not merged.
        tx = self.tx_hash or f"ts:{self.timestamp}"
        return (tx, self.token_id, self.side, _canon(self.size), _canon(self.price))

    @property
    def key_id(self) -> str:
        """Short stable id of :attr:`key`: the cursor stores it and the signal id is it."""
        return stable_id(*self.key)


def _canon(x: float) -> str:
    return repr(float(x))


def _normalised(row: dict[str, Any]) -> dict[str, Any]:
    return {str(k).replace("_", "").lower(): v for k, v in row.items()}


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = row.get(name)
        if value is not None and value != "":
            return value
    return None


def finite_number(value: Any, what: str, error: type[InputError] = BadTrade) -> float:
    """A finite number from a JSON value (numbers may come as strings), or ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise error(f"{what} is not a number: {value!r}")
    try:
        out = float(value)
    except ValueError as exc:
        raise error(f"{what} is not a number: {value!r}") from exc
    if not math.isfinite(out):
        raise error(f"{what} is not finite: {value!r}")
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_trade(row: Any) -> Trade:
    """One row -> :class:`Trade`, or :class:`BadTrade`."""
    if not isinstance(row, dict):
        raise BadTrade(f"row is not an object: {str(row)[:80]!r}")
    n = _normalised(row)
    side = _text(n.get("side")).upper()
    if side not in ("BUY", "SELL"):
        raise BadTrade(f"bad side {n.get('side')!r}")
    token = _pick(n, _TOKEN)
    if token is None or isinstance(token, (dict, list, bool)):
        raise BadTrade("no token id (asset / token_id / asset_id / tokenId)")
    size = finite_number(n.get("size"), "size")
    price = finite_number(n.get("price"), "price")
    if size <= 0:
        raise BadTrade(f"size {size} is not positive")
    if not 0 < price <= 1:
        raise BadTrade(f"price {price} is outside (0, 1]")
    ts = finite_number(_pick(n, _TIMESTAMP), "timestamp")
    if ts >= _MS_THRESHOLD:
        ts /= 1000
    if ts < 1:  # (0, 1) would become second 0
        raise BadTrade(f"timestamp {ts} is not a positive epoch second")
    return Trade(
        account=_text(_pick(n, _ACCOUNT)).lower(), side=side,  # type: ignore[arg-type]
        token_id=str(token), size=size, price=price, timestamp=int(ts),
        condition_id=_text(_pick(n, _CONDITION)), slug=_text(n.get("slug")),
        outcome=_text(n.get("outcome")), title=_text(n.get("title")),
        tx_hash=_text(_pick(n, _TX)).lower(),
    )


def row_timestamp(row: Any) -> int | None:
    """The epoch second of a raw row, or None when it has none usable (paging needs only this)."""
    if not isinstance(row, dict):
        return None
    try:
        ts = finite_number(_pick(_normalised(row), _TIMESTAMP), "timestamp")
    except BadTrade:
        return None
    return int(ts / 1000 if ts >= _MS_THRESHOLD else ts)


def parse_trades(rows: list[Any]) -> tuple[list[Trade], list[str]]:
    """Every row that parses, and one reason per row that did not (the caller counts them)."""
    trades: list[Trade] = []
    bad: list[str] = []
    for row in rows:
        try:
            trades.append(parse_trade(row))
        except BadTrade as exc:
            bad.append(str(exc))
    return trades, bad


def parse_value(body: Any, user: str) -> float | None:
    """A Data API ``/value?user=`` reply (``[{"user": ..., "value": ...}]``) as the wallet's
    portfolio value in $, or None when the reply does not name it with a finite number."""
    rows = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    for row in rows:
        if isinstance(row, dict) and str(row.get("user", "")).lower() == user.lower():
            try:
                value = finite_number(row.get("value"), "value")
            except BadTrade:
                return None
            return value if value >= 0 else None
    return None
