"""Log filters as a node reads them (pure): the ``eth_getLogs`` / ``eth_subscribe("logs")`` object.

``{fromBlock, toBlock, blockHash, address, topics}``: ``address`` one address or a list (any of
them); ``topics`` up to 4 positions, each ``null`` (anything), one topic, or a list (any of them);
positions are AND-ed. Refused like a node refuses them (-32602, docs/venue.md K4): a filter that is
not an object, a malformed address or topic, more than 4 topic positions, more than
``MAX_PER_POSITION`` entries in one position, ``blockHash`` together with a block range, a block
tag the node does not know. The block range itself (reversed, past the head, too wide) and the
result size are the node's to judge (:mod:`rpc`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_TOPICS = 4
MAX_PER_POSITION = 1000
TAGS = ("latest", "earliest", "pending", "safe", "finalized")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TOPIC = re.compile(r"0x[0-9a-fA-F]{64}")
_QUANTITY = re.compile(r"0x(0|[1-9a-fA-F][0-9a-fA-F]*)")


class BadFilter(ValueError):
    """The filter object is refused as invalid params (-32602); the message is the node's."""


@dataclass(frozen=True)
class LogFilter:
    addresses: frozenset[str] | None  # None: any contract
    topics: tuple[frozenset[str] | None, ...]  # per position; None: anything
    from_block: str = "latest"  # a tag or a hex quantity
    to_block: str = "latest"
    block_hash: str | None = None

    def matches(self, log: dict[str, Any]) -> bool:
        if self.addresses is not None and log["address"].lower() not in self.addresses:
            return False
        topics = log["topics"]
        if len(topics) < len(self.topics):
            return False
        return all(want is None or topics[i].lower() in want for i, want in enumerate(self.topics))


def _many(value: Any, pattern: re.Pattern[str], what: str) -> frozenset[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_PER_POSITION:
        raise BadFilter("exceed max addresses or topics per search position")
    if not all(isinstance(x, str) and pattern.fullmatch(x) for x in items):
        raise BadFilter(f"invalid argument 0: hex string has the wrong length or is not a {what}")
    return frozenset(x.lower() for x in items)


def _block(value: Any) -> str:
    if value is None:
        return "latest"
    if isinstance(value, str) and (value in TAGS or _QUANTITY.fullmatch(value)):
        return value
    raise BadFilter(f"invalid argument 0: invalid block number {value!r}")


def parse_filter(obj: Any, subscription: bool = False) -> LogFilter:
    """:class:`LogFilter` of a filter object, or :class:`BadFilter`. A subscription delivers new
    blocks only: a block range other than ``latest`` is refused, as the node does."""
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise BadFilter("invalid argument 0: the filter must be an object")
    raw_topics = obj.get("topics") or []
    if not isinstance(raw_topics, list):
        raise BadFilter("invalid argument 0: topics must be an array")
    if len(raw_topics) > MAX_TOPICS:
        raise BadFilter("exceed max topics")
    topics = tuple(_many(t, _TOPIC, "topic") for t in raw_topics)
    addresses = _many(obj.get("address"), _ADDRESS, "address")
    block_hash = obj.get("blockHash")
    if block_hash is not None:
        if obj.get("fromBlock") is not None or obj.get("toBlock") is not None:
            raise BadFilter("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
        if not isinstance(block_hash, str) or not _TOPIC.fullmatch(block_hash):
            raise BadFilter("invalid argument 0: blockHash is not a 32-byte hash")
    out = LogFilter(addresses, topics, _block(obj.get("fromBlock")), _block(obj.get("toBlock")),
                    block_hash.lower() if isinstance(block_hash, str) else None)
    if subscription and (out.block_hash or out.from_block != "latest" or out.to_block != "latest"):
        raise BadFilter("invalid from and to block combination: a logs subscription delivers new blocks only")
    return out
