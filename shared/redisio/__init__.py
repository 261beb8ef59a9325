"""Redis helpers: connecting with retry, typed stream I/O, heartbeats and health checks."""

from shared.redisio.client import connect
from shared.redisio.streams import StreamConsumer, StreamEntry, add_message

__all__ = ["StreamConsumer", "StreamEntry", "add_message", "connect"]
