"""Outcome ids and the market system they belong to (docs/venue.md, rules V1-V6).

Polymarket runs two market systems side by side. Gamma gives every market a ``version``:

* ``"v1"``: a CTF market. Its outcomes are ``tokenId``s on the Conditional Tokens ledger, orders are
  signed for the CTF exchanges (EIP-712 domain version "2"), balances are asked as ``CONDITIONAL``.
* ``"v2"``: a Protocol V2 market. Its outcomes are ``positionId``s on the PositionManager ledger,
  orders are signed for ExchangeV3 (domain version "3"), split/merge/redeem go through the Router,
  balances are asked as ``CONDITIONAL-V2``.

The docs say to pick the system by ``version``, never by which fields a market happens to carry;
that is what :func:`system_of` does. The official SDK, for its part, signs by the id itself: a v2
position id has bits 40..103 all zero (its "reserved bits"), a v1 token id (a hash) practically
never does. :func:`outcome` checks the two agree, so a market whose ids contradict its version is
refused before any order is signed for the wrong exchange.

Both kinds of id are uint256 decimal strings in disjoint namespaces, so Redis keys stay keyed by
the id string alone (docs/redis-schema.md, "market systems"); the system travels beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shared.venue.errors import UnknownMarketVersion

MarketSystem = Literal["v1", "v2"]
SYSTEMS: tuple[MarketSystem, ...] = ("v1", "v2")
AssetType = Literal["CONDITIONAL", "CONDITIONAL-V2"]

_UINT256_MAX = (1 << 256) - 1
_V2_RESERVED_BITS = ((1 << 64) - 1) << 40  # the SDK's _V2_RESERVED_BITS_MASK
_DECIMAL = re.compile(r"[0-9]{1,78}\Z")

V2_MODULE_BINARY = 1
V2_MODULE_NEG_RISK = 2
V2_MODULES = (1, 2, 3)  # binary, neg-risk, combinatorial

_FIX = "upgrade polyfleet, or blacklist the market (risk.blacklist_token_keys) until it is supported"


def system_of(version: str | None, market: str = "") -> MarketSystem:
    """The market system named by Gamma's ``version``.

    A market without a ``version`` is read as "v1": the field arrived with Protocol V2, and every
    market listed before it is a CTF market (docs/venue.md V1). Any other value is refused."""
    if version is None or version == "":
        return "v1"
    v = version.strip().lower()
    if v in SYSTEMS:
        return v  # type: ignore[return-value]
    raise UnknownMarketVersion(f"market {market or '?'} has Gamma version {version!r}, which polyfleet does not "
                               "know (it trades v1 CTF and v2 Protocol V2 markets)", _FIX)


def in_v2_namespace(asset_id: str) -> bool:
    """True when ``asset_id`` is shaped like a v2 position id (the rule the SDK signs by)."""
    value = _uint256(asset_id)
    return value is not None and value & _V2_RESERVED_BITS == 0


def _uint256(raw: str) -> int | None:
    raw = raw.strip()
    if not _DECIMAL.match(raw):
        return None
    value = int(raw)
    return value if value <= _UINT256_MAX else None


@dataclass(frozen=True, slots=True)
class OutcomeId:
    """One tradable outcome: its id and the market system it lives in."""

    value: str
    system: MarketSystem = "v1"

    def __str__(self) -> str:
        return self.value

    @property
    def asset_type(self) -> AssetType:
        """The CLOB balance-allowance asset type of this outcome."""
        return "CONDITIONAL-V2" if self.system == "v2" else "CONDITIONAL"


def outcome(value: str, version: str | None, market: str = "") -> OutcomeId:
    """An :class:`OutcomeId` for an id of a market with Gamma ``version``, checked against the id's
    shape: the SDK signs for ExchangeV3 exactly when the id is in the v2 namespace, so an id that
    disagrees with its market's version would be signed for the wrong exchange."""
    system = system_of(version, market)
    if _uint256(value) is None:
        raise UnknownMarketVersion(f"market {market or '?'} has an outcome id {value!r} that is not a uint256",
                                   "check the market's clobTokenIds / positionIds on Gamma")
    if in_v2_namespace(value) != (system == "v2"):
        raise UnknownMarketVersion(
            f"market {market or '?'} says version {system} but its outcome id {value[:12]}... is shaped like a "
            f"{'v2 position id' if system == 'v1' else 'v1 token id'}", _FIX)
    return OutcomeId(value, system)


# --- Protocol V2 id layout (for the sim, and to read a v2 id back) -----------------------------------
# position id = conditionId (31 bytes) ‖ outcome index (1 byte); the condition id's first byte is
# the module (1 binary, 2 neg-risk, 3 combinatorial). Written as 32 bytes the condition id ends in 00.


def v2_condition_id(module: int, body: bytes) -> str:
    """A 32-byte (``...00``-padded) v2 condition id: ``module ‖ body ‖ zeros``. ``body`` is at most
    18 bytes so that bytes 19..30 (which hold the reserved bits of its position ids) stay zero."""
    if module not in V2_MODULES:
        raise ValueError(f"v2 module {module} is not one of {V2_MODULES}")
    if len(body) > 18:
        raise ValueError("a v2 condition id body is at most 18 bytes")
    raw31 = bytes([module]) + body + bytes(30 - len(body))
    return "0x" + raw31.hex() + "00"


def v2_position_id(condition_id: str, outcome_index: int) -> str:
    """The v2 position id (decimal) of outcome ``outcome_index`` (0 = YES, 1 = NO) of a condition."""
    hex31 = _condition31(condition_id)
    if outcome_index not in (0, 1):
        raise ValueError("a binary v2 outcome index is 0 or 1")
    return str(int(hex31 + f"{outcome_index:02x}", 16))


def v2_condition_of(position_id: str) -> tuple[str, int]:
    """(32-byte condition id, outcome index) of a v2 position id."""
    value = _uint256(position_id)
    if value is None or value & _V2_RESERVED_BITS:
        raise ValueError(f"{position_id!r} is not a v2 position id")
    encoded = f"{value:064x}"
    return "0x" + encoded[:-2] + "00", int(encoded[-2:], 16)


def _condition31(condition_id: str) -> str:
    h = condition_id.lower().removeprefix("0x")
    if len(h) == 64 and h.endswith(("00", "01")):
        h = h[:-2]
    if len(h) != 62 or not re.fullmatch(r"[0-9a-f]{62}", h):
        raise ValueError(f"{condition_id!r} is not a v2 condition id (bytes31, or bytes32 ending in 00)")
    return h
