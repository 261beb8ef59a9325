"""The maker worker's own Prometheus metrics (served by shared.metrics on its /metrics port;
``PF_METRICS_PORT`` gives each worker on one host its own port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ORDERS = Counter("polyfleet_worker_orders", "Order records written to the orders stream, by side and status",
                 ("side", "status"))
FILLS = Counter("polyfleet_worker_fills", "Fills booked, by side", ("side",))
FILLED_SHARES = Counter("polyfleet_worker_filled_shares", "Shares filled, by side", ("side",))
SESSIONS = Gauge("polyfleet_worker_sessions", "Token sessions running in this process")
SESSION_ENDS = Counter("polyfleet_worker_session_ends", "Sessions ended, by report (closed, failed, handed_back)",
                       ("report",))
NOT_SENT = Counter("polyfleet_worker_not_sent", "Orders the send gate kept from the venue (ownership no longer certain, "
                   "or order heartbeats failing)",
                   ("side",))
LEASE_BREAKS = Counter("polyfleet_worker_lease_breaks", "Renewals that may have landed after the lease expired")
HEARTBEATS = Counter("polyfleet_worker_venue_heartbeats", "Order heartbeats sent to the venue, by outcome (ok, failed)",
                     ("outcome",))
HEARTBEAT_GATE = Gauge("polyfleet_worker_heartbeat_gate_open",
                       "1 while order heartbeats are accepted and orders may be placed; 0 while failed closed")
HEARTBEAT_CLOSURES = Counter("polyfleet_worker_heartbeat_fail_closed",
                             "Times order placement stopped because order heartbeats failed near the venue's deadline")
TRADE_STATUSES = Counter("polyfleet_worker_trade_statuses", "Settlement status changes of our trades reported, by status",
                         ("status",))
VENUE_WINDOW_WAITS = Counter("polyfleet_worker_venue_window_waits",
                             "Pauses through a venue trading window (restarting, post_only), by restriction",
                             ("restriction",))
COPY_GUARDED = Counter("polyfleet_worker_copy_guarded",
                       "BUYs a copy session refused: above the leader's price plus its slippage limit (copycap.py)")
