"""The one root of every error a parser of outside input raises (H5).

Outside input is what polyfleet did not write itself: the venue's websocket frames and REST books
(shared/venue/market_ws.py), Gamma markets and keyset pages (gamma.py, gamma_keyset.py), Data API
trades (data_api.py), live-data frames (live_data.py), stream entries (shared/messages.py, which
any process with Redis access can write), and the configuration file and its environment
overrides (shared/config.py). Each parser keeps its own error class, so a caller that catches one
kind never swallows another by accident; all of them derive from :class:`InputError`, so a caller
(or a test) that means "any bad input" says so in one ``except``.
"""

from __future__ import annotations


class InputError(ValueError):
    """The input is malformed: log it, count it, skip it (or refuse to start, for a config)."""
