"""The venue room: everything that talks to Polymarket (REST, sockets, signing, chain, relayer).

Services reach the venue only through this package; nothing outside it imports the official SDK
(``polymarket``, the package of polymarket-client). The wire decoders here are kept apart from
Redis and sockets so they test against recorded JSON (tests/fixtures/polymarket/). Every venue
rule the code relies on is recorded, with its source, in docs/venue.md."""
