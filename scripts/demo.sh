#!/usr/bin/env bash
# `make demo`: the whole system in sim mode on this machine — no keys, no internet.
# `make demo` runs scripts/bootstrap.sh first (uv, .venv, redis-server); this starts a redis-server if
# none is reachable, runs every service with honcho (Procfile), and shows a live status table.
# Ctrl-C stops everything.
# DEMO_SECONDS=N stops by itself after N seconds (used to check the demo non-interactively).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-redis.sh

export PF_CONFIG="${PF_CONFIG:-config/polyfleet.example.yaml}"
export PF_NAMESPACE="${PF_NAMESPACE:-pfdemo}"   # its own namespace: never mixes with real state
# The API (dashboard) needs a bearer token; a fresh random one per demo unless you set one.
export PF_API_TOKEN="${PF_API_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')}"
mkdir -p var/demo
uv run --locked python -m cli wipe --yes >/dev/null   # every demo starts fresh

uv run --locked honcho start -f Procfile > var/demo/services.log 2>&1 &
services=$!
stop() { kill -TERM "$services" 2>/dev/null || true; wait "$services" 2>/dev/null || true; }
trap stop EXIT INT TERM

cat <<MSG
polyfleet demo (sim mode, namespace $PF_NAMESPACE, config $PF_CONFIG)
  services log:  tail -f var/demo/services.log
  streams:       redis-cli XRANGE $PF_NAMESPACE:signals - + COUNT 5
                 redis-cli XRANGE $PF_NAMESPACE:fills - + COUNT 5
  sim exchange:  curl -s http://127.0.0.1:8700/_sim/orders | head -c 600
  dashboard:     http://127.0.0.1:8800/#token=$PF_API_TOKEN
  API:           curl -s -H "Authorization: Bearer $PF_API_TOKEN" http://127.0.0.1:8800/api/tokens
Scripted wallets (a trader, a market maker, a high-frequency one) trade every few seconds together;
the first token usually starts trading within 30 s. \`polyfleet leaders\` flags the last two.
MSG
uv run --locked python -m cli status --watch --interval 2 ${DEMO_SECONDS:+--duration "$DEMO_SECONDS"}
