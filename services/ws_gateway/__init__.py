"""Websocket gateway: one set of market-channel connections for every token any service wants (B1-B5)."""
