"""The exchanges' ``OrderFilled`` logs (Polygon JSON-RPC) -> the trades the Data API reports (venue.md K1-K4).

Two event shapes exist (docs/venue.md K1):

* **current** (CTF Exchange V2 and NegRisk CTF Exchange V2 for v1 markets, ExchangeV3 for v2
  markets): ``OrderFilled(bytes32 indexed orderHash, address indexed maker, address indexed taker,
  uint8 side, uint256 tokenId, uint256 makerAmountFilled, uint256 takerAmountFilled, uint256 fee,
  bytes32 builder, bytes32 metadata)``;
* **legacy** (the CTF exchanges before the 2026-04-28 cutover): ``OrderFilled(bytes32 indexed
  orderHash, address indexed maker, address indexed taker, uint256 makerAssetId, uint256
  takerAssetId, uint256 makerAmountFilled, uint256 takerAmountFilled, uint256 fee)``; asset id 0
  is the collateral, so ``makerAssetId == 0`` is a BUY.

Every filled order emits one log whose ``maker`` is that order's owner. A maker order's log names
the taker order's owner as ``taker``; the taker order's own log (the sum of what it met) names the
exchange itself. A followed wallet's trades, one per fill as the Data API lists them (K3):

* as maker: its own log with a ``taker`` that is not the exchange: side, token, amounts as logged;
* as taker: each log that names it as ``taker``: it gave what the maker received. Its own
  (exchange-taker) log in the same transaction says which side and token it really traded: the
  same token means a complementary match (side opposite the maker's, same price); another token
  means a mint or merge (its own side and token, price ``1 - maker's``). Without that log the
  match is read as complementary. The exchange-taker log itself is never a trade (it repeats the
  fills).

Amounts have 6 decimals; size is the shares, price collateral / shares to 4 decimals (the finest
tick, venue.md P1, so a rounded-down taking amount still gives the order's price). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from eth_utils.crypto import keccak

from shared.input_errors import InputError
from shared.venue.data_api import Side, Trade

CURRENT_SIGNATURE = "OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)"
LEGACY_SIGNATURE = "OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"
CURRENT_TOPIC = "0x" + keccak(text=CURRENT_SIGNATURE).hex()
LEGACY_TOPIC = "0x" + keccak(text=LEGACY_SIGNATURE).hex()
TOPICS = (CURRENT_TOPIC, LEGACY_TOPIC)
# the environment fields of the contracts that emit it (shared/venue/environment.py)
EXCHANGE_FIELDS = ("standard_exchange", "neg_risk_exchange", "exchange_v3")
UNIT = 10**6
PRICE_DECIMALS = 4
_WORD = 64  # hex digits in one ABI word
_DATA_WORDS = {CURRENT_TOPIC: 7, LEGACY_TOPIC: 5}


class BadLog(InputError):
    """A log that is not a readable ``OrderFilled``."""


@dataclass(frozen=True, slots=True)
class OnchainFill:
    """One ``OrderFilled`` log, the same for both shapes. ``side`` is the maker order's."""

    exchange: str  # the emitting contract, lower case
    tx_hash: str
    block: int
    log_index: int
    order_hash: str
    maker: str
    taker: str
    side: Side
    token_id: str
    shares: int  # 6-decimal units
    collateral: int
    fee: int
    removed: bool = False

    @property
    def price(self) -> float:
        return round(self.collateral / self.shares, PRICE_DECIMALS)

    @property
    def is_taker_order(self) -> bool:
        """The taker order's own log: its counterparty is the exchange."""
        return self.taker == self.exchange


def address_topic(address: str) -> str:
    """An address as an indexed topic (left-padded to 32 bytes, lower case)."""
    raw = address.lower().removeprefix("0x")
    if len(raw) != 40:
        raise ValueError(f"not an address: {address!r}")
    return "0x" + raw.rjust(_WORD, "0")


def _hex(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise BadLog(f"{what} is not 0x-hex: {str(value)[:80]!r}")
    body = value[2:].lower()
    try:
        int(body or "0", 16)
    except ValueError as exc:
        raise BadLog(f"{what} is not 0x-hex: {value[:80]!r}") from exc
    return body


def _quantity(value: object, what: str) -> int:
    return int(_hex(value, what) or "0", 16)


def _topic_address(topic: str, what: str) -> str:
    if topic[:24].strip("0"):
        raise BadLog(f"{what} topic is not an address: 0x{topic}")
    return "0x" + topic[24:]


def decode_log(log: Mapping[str, object]) -> OnchainFill:
    """One ``eth_getLogs`` / ``eth_subscription`` log object -> :class:`OnchainFill`, or :class:`BadLog`."""
    topics = log.get("topics")
    if not isinstance(topics, list) or len(topics) != 4:
        raise BadLog(f"an OrderFilled log has 4 topics, not {topics!r}")
    words = [_hex(t, "topic") for t in topics]
    if any(len(w) != _WORD for w in words):
        raise BadLog(f"topics must be 32 bytes: {topics!r}")
    topic0 = "0x" + words[0]
    if topic0 not in _DATA_WORDS:
        raise BadLog(f"not an OrderFilled topic: {topic0}")
    data = _hex(log.get("data"), "data")
    n = _DATA_WORDS[topic0]
    if len(data) != n * _WORD:
        raise BadLog(f"OrderFilled data is {n} words, not {len(data) / _WORD:g}")
    values = [int(data[i * _WORD:(i + 1) * _WORD], 16) for i in range(n)]
    if topic0 == CURRENT_TOPIC:
        side_code, token, maker_amount, taker_amount, fee = values[:5]
        if side_code not in (0, 1):
            raise BadLog(f"side {side_code} is neither BUY (0) nor SELL (1)")
        side: Side = "BUY" if side_code == 0 else "SELL"
    else:
        maker_asset, taker_asset, maker_amount, taker_amount, fee = values
        if (maker_asset == 0) == (taker_asset == 0):
            raise BadLog(f"exactly one asset must be the collateral (0): {maker_asset}, {taker_asset}")
        side, token = ("BUY", taker_asset) if maker_asset == 0 else ("SELL", maker_asset)
    shares, collateral = (taker_amount, maker_amount) if side == "BUY" else (maker_amount, taker_amount)
    if shares <= 0 or collateral <= 0:
        raise BadLog(f"a fill moves shares and collateral: {shares}, {collateral}")
    address = _hex(log.get("address"), "address")
    tx = _hex(log.get("transactionHash"), "transactionHash")
    if len(address) != 40 or len(tx) != _WORD:
        raise BadLog(f"bad address or transaction hash: {log.get('address')!r}, {log.get('transactionHash')!r}")
    return OnchainFill(
        exchange="0x" + address, tx_hash="0x" + tx, block=_quantity(log.get("blockNumber"), "blockNumber"),
        log_index=_quantity(log.get("logIndex"), "logIndex"), order_hash="0x" + words[1],
        maker=_topic_address(words[2], "maker"), taker=_topic_address(words[3], "taker"), side=side,
        token_id=str(token), shares=shares, collateral=collateral, fee=fee, removed=log.get("removed") is True)


def _opposite(side: Side) -> Side:
    return "SELL" if side == "BUY" else "BUY"


def wallet_trades(account: str, fills: Iterable[OnchainFill], timestamps: Mapping[int, int]) -> list[Trade]:
    """The trades of ``account`` in ``fills`` (whole transactions, in log order), as the Data API
    rows of that wallet would be: see the module doc. ``timestamps`` maps block -> epoch second."""
    me = account.lower()
    mine = [f for f in fills if not f.removed and me in (f.maker, f.taker)]
    own = {f.tx_hash: f for f in mine if f.maker == me and f.is_taker_order}
    out: list[Trade] = []
    for f in mine:
        if f.maker == me and not f.is_taker_order:
            side, token, price = f.side, f.token_id, f.price
        elif f.taker == me:
            agg = own.get(f.tx_hash)
            if agg is None or agg.token_id == f.token_id:
                side, token, price = _opposite(f.side), f.token_id, f.price
            else:  # a mint (both bought) or a merge (both sold): the other outcome, at 1 - price
                side, token, price = agg.side, agg.token_id, round(1 - f.price, PRICE_DECIMALS)
        else:
            continue
        if not 0 < price <= 1:  # a price the venue cannot have: not a fill of an outcome
            continue
        out.append(Trade(account=me, side=side, token_id=token, size=f.shares / UNIT, price=price,
                         timestamp=timestamps[f.block], tx_hash=f.tx_hash))
    return out
