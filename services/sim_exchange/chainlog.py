"""The sim's Polygon blocks and the exchanges' ``OrderFilled`` logs in them (pure, clock injected).

Every fill the sim reports to the Data API (a followed or scripted wallet's trade, or our order
matched once it is mined) is also a settlement transaction on the chain, with the hash the Data API
row carries: one block per transaction, numbered and timed, holding the logs the real exchange
emits for it (docs/venue.md K1-K3):

* the wallet's fill as **maker** (it rested): its order's log (maker = the wallet, taker = the
  crowd's order owner), then the crowd's taker-order log (taker = the exchange);
* the wallet's fill as **taker**: the crowd's maker-order log (maker = the crowd, taker = the
  wallet), then the wallet's taker-order log (taker = the exchange).

Events are the current shape (``shared.venue.chain_fills.CURRENT_SIGNATURE``), ABI-encoded as the
contract does: orderHash, maker, taker indexed; side, tokenId, amounts, fee, builder, metadata in
``data``. The exchange is the market's (standard, neg-risk or ExchangeV3). Logs carry no
``blockTimestamp``: a client reads it with ``eth_getBlockByNumber``.

A block is built while one transaction's logs come in (a ``same_tx`` burst adds several fills to
it) and sealed before anything can read it: every RPC read and every housekeeping tick seals, and
a block is never changed once sealed, so a reader never sees a block grow. Sealing hands the new
logs to the listeners (``eth_subscribe``). A trade dated before the head lands at the head's time
(block timestamps never go back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from shared.venue.chain_fills import CURRENT_TOPIC, UNIT, address_topic

START_BLOCK = 1_000
ZERO32 = b"\x00" * 32
Listener = Callable[[list[dict[str, Any]]], None]


def crowd_address() -> str:
    """The owner of the crowd's orders (the sim's counterparty to every fill)."""
    return "0x" + keccak(text="polyfleet-sim:crowd").hex()[-40:]


@dataclass
class Block:
    number: int
    timestamp: int
    parent: str
    txs: list[str] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hash(self) -> str:
        return "0x" + keccak(text=f"polyfleet-sim:block:{self.number}:{self.timestamp}").hex()

    def json(self) -> dict[str, Any]:
        """``eth_getBlockByNumber`` without full transactions."""
        return {"number": hex(self.number), "hash": self.hash, "parentHash": self.parent,
                "timestamp": hex(self.timestamp), "transactions": list(self.txs)}


def _units(x: float) -> int:
    return int(round(x * UNIT))


def order_filled(exchange: str, order_hash: bytes, maker: str, taker: str, side: str, token_id: int,
                 shares: int, collateral: int) -> tuple[str, list[str], str]:
    """(address, topics, data) of one OrderFilled: the maker order gives collateral (BUY) or shares."""
    maker_amount, taker_amount = (collateral, shares) if side == "BUY" else (shares, collateral)
    data = encode(["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
                  [0 if side == "BUY" else 1, token_id, maker_amount, taker_amount, 0, ZERO32, ZERO32])
    topics = [CURRENT_TOPIC, "0x" + order_hash.hex(), address_topic(maker), address_topic(taker)]
    return exchange.lower(), topics, "0x" + data.hex()


def fill_logs(row: dict[str, Any], maker: bool, exchange: str) -> list[tuple[str, list[str], str]]:
    """The two logs of one Data-API trade row (see the module doc); none for an asset that is not a
    uint256 (scripted rows may name tokens the chain cannot hold)."""
    try:
        token = int(str(row["asset"]))
        shares, collateral = _units(float(row["size"])), _units(float(row["size"]) * float(row["price"]))
    except (KeyError, TypeError, ValueError):
        return []
    if not 0 <= token < 2**256 or shares <= 0 or collateral <= 0:
        return []
    wallet, crowd, tx = str(row["proxyWallet"]).lower(), crowd_address(), str(row["transactionHash"])
    side = str(row["side"])
    other = "SELL" if side == "BUY" else "BUY"

    def order(owner: str) -> bytes:
        return keccak(text=f"polyfleet-sim:order:{tx}:{owner}:{token}:{shares}:{collateral}")

    resting, aggressing = ((wallet, side), (crowd, other)) if maker else ((crowd, other), (wallet, side))
    return [order_filled(exchange, order(resting[0]), resting[0], aggressing[0], resting[1], token, shares, collateral),
            order_filled(exchange, order(aggressing[0]), aggressing[0], exchange, aggressing[1], token, shares,
                         collateral)]


class ChainLog:
    def __init__(self, clock: Callable[[], float] = time.time, start: int = START_BLOCK) -> None:
        self.clock = clock
        genesis = Block(start, int(clock()), "0x" + "00" * 32)
        self.blocks: dict[int, Block] = {start: genesis}
        self.head = start  # the newest sealed block
        self.first = start
        self._open: Block | None = None
        self.listeners: list[Listener] = []

    def block(self, number: int) -> Block | None:
        return self.blocks.get(number)

    def _new(self, ts: float) -> Block:
        head = self.blocks[self.head]
        return Block(self.head + 1, max(int(ts), head.timestamp), head.hash)

    def add(self, tx_hash: str, logs: list[tuple[str, list[str], str]], ts: float | None = None) -> None:
        """The logs of one transaction (appended to the block being built when it is that
        transaction's, else in a new block after sealing the open one)."""
        tx = tx_hash.lower()
        if self._open is None or tx not in self._open.txs:
            self.seal()
            self._open = self._new(self.clock() if ts is None else ts)
            self._open.txs.append(tx)
        blk = self._open
        for address, topics, data in logs:
            blk.logs.append({"address": address, "topics": topics, "data": data, "blockNumber": hex(blk.number),
                             "blockHash": "", "transactionHash": tx, "transactionIndex": hex(blk.txs.index(tx)),
                             "logIndex": hex(len(blk.logs)), "removed": False})

    def mine(self, tx_hash: str) -> int:
        """A transaction without logs (a raw transaction of :mod:`rpc`) in a block of its own."""
        self.add(tx_hash, [])
        self.seal()
        return self.head

    def seal(self) -> None:
        """Close the block being built (if any) and hand its logs to the listeners."""
        blk, self._open = self._open, None
        if blk is None:
            return
        for log in blk.logs:
            log["blockHash"] = blk.hash
        self.blocks[blk.number] = blk
        self.head = blk.number
        if blk.logs:
            for listener in list(self.listeners):
                listener(blk.logs)

    def logs_between(self, start: int, end: int) -> list[dict[str, Any]]:
        return [log for n in range(max(start, self.first), min(end, self.head) + 1) for log in self.blocks[n].logs]
