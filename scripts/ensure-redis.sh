#!/usr/bin/env bash
# Make sure a Redis answers at PF_REDIS_URL (default redis://127.0.0.1:6379/0).
# If one already answers PING, do nothing. Otherwise start a local redis-server on 127.0.0.1:6379
# with append-only persistence under <repo>/var/redis and wait until it answers. redis-server itself
# comes from scripts/bootstrap.sh (`make redis` and `make demo` run it first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
URL="${PF_REDIS_URL:-redis://127.0.0.1:6379/0}"
PORT="${PF_REDIS_PORT:-6379}"          # overridable for tests; 6379 is the contract
DATA_DIR="${PF_REDIS_DIR:-$ROOT/var/redis}"

ping_ok() {
    command -v redis-cli >/dev/null 2>&1 || return 1
    [ "$(redis-cli -u "$URL" ping 2>/dev/null || true)" = "PONG" ]
}

if ping_ok; then
    echo "redis: already answering at ${URL%%\?*}"
    exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis: redis-server is not installed; 'make redis' installs it (scripts/bootstrap.sh), or run 'make up'" >&2
    exit 1
fi

case "$URL" in
    redis://127.0.0.1:${PORT}*|redis://localhost:${PORT}*|redis://*@127.0.0.1:${PORT}*|redis://*@localhost:${PORT}*) ;;
    *) echo "redis: warning: PF_REDIS_URL=$URL is not local port $PORT; starting one on 127.0.0.1:$PORT anyway" >&2 ;;
esac

mkdir -p "$DATA_DIR"
echo "redis: starting redis-server on 127.0.0.1:$PORT (append-only, data in $DATA_DIR)"
redis-server --daemonize yes --port "$PORT" --bind 127.0.0.1 --appendonly yes --dir "$DATA_DIR" \
    --logfile "$DATA_DIR/redis.log"

for _ in $(seq 1 100); do
    if ping_ok || [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null || true)" = "PONG" ]; then
        echo "redis: ready"
        exit 0
    fi
    sleep 0.1
done
echo "redis: redis-server did not answer within 10s (see $DATA_DIR/redis.log)" >&2
exit 1
