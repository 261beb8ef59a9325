"""services/api: the management REST API, a websocket push and the web dashboard (F2, F3).

It reads Redis directly and writes only ``ControlRequest`` messages to ``pf:control`` (the
orchestrator stays the only writer of lifecycle, blacklist and kill switch). Every ``/api/*`` route
and the websocket need ``Authorization: Bearer $PF_API_TOKEN``; the dashboard's static files and
``/healthz`` do not. docs/api.md lists the routes.
"""
