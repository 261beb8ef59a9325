"""Polymarket wire formats: typed decoders kept apart from Redis and sockets, so they test
against recorded JSON (tests/fixtures/polymarket/)."""
