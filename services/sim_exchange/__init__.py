"""sim_exchange: a local stand-in for Polymarket (CLOB REST + market socket, Gamma, Data API, admin API)."""
