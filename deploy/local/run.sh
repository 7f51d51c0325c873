#!/usr/bin/env bash
# The exchange on this machine as it runs in production, without containers: one PostgreSQL,
# N app processes (default 3) and nginx in front, all from Debian packages and this checkout.
#
#   deploy/local/run.sh start   # migrate, bootstrap, start the processes and nginx; prints the URL
#   deploy/local/run.sh stop
#
# Settings (environment): EXCHANGE_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/exchange_local,
# created if missing), DEPLOY_PORT (nginx, default 8100), DEPLOY_PROCESSES (3),
# DEPLOY_RUN (state folder, default var/local), DEPLOY_READ_NICE (the CPU niceness of every app
# process but the first, the one that takes orders; default 10, 0 for all alike).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUN="${DEPLOY_RUN:-$ROOT/var/local}"
PORT="${DEPLOY_PORT:-8100}"
PROCESSES="${DEPLOY_PROCESSES:-3}"
READ_NICE="${DEPLOY_READ_NICE:-10}"
export EXCHANGE_DATABASE_URL="${EXCHANGE_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/exchange_local}"
export EXCHANGE_SIGNING_KEY_FILE="${EXCHANGE_SIGNING_KEY_FILE:-$RUN/signing.key}"
export EXCHANGE_OPERATOR_KEY_FILE="${EXCHANGE_OPERATOR_KEY_FILE:-$RUN/operator.key}"
EXCHANGE="${DEPLOY_EXCHANGE_BIN:-$ROOT/.venv/bin/exchange}"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

start() {
    mkdir -p "$RUN"
    [ -x "$NGINX" ] || { echo "nginx is missing: apt-get install -y nginx" >&2; exit 2; }
    database="${EXCHANGE_DATABASE_URL##*/}"
    server="${EXCHANGE_DATABASE_URL%/*}"
    psql "${server/+asyncpg/}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
        || psql "${server/+asyncpg/}/postgres" -qc "CREATE DATABASE \"$database\""
    "$EXCHANGE" migrate
    "$EXCHANGE" bootstrap
    # Without autovacuum nothing keeps the planner's statistics: as the tables grow, the plans
    # cached with prepared statements read them whole (docs/DEPLOY.md, "PostgreSQL settings").
    [ "$(psql "${EXCHANGE_DATABASE_URL/+asyncpg/}" -tAc 'SHOW autovacuum')" = on ] \
        || echo "warning: PostgreSQL's autovacuum is off on this server; turn it on, or ANALYZE the database as it grows" >&2
    # At PostgreSQL's default max_wal_size (1 GB) a checkpoint begins every minute or two under
    # load, and the exchange slows while it runs (docs/DEPLOY.md, "PostgreSQL settings").
    [ "$(psql "${EXCHANGE_DATABASE_URL/+asyncpg/}" -tAc "SELECT setting::bigint >= 4096 FROM pg_settings WHERE name = 'max_wal_size'")" = t ] \
        || echo "warning: PostgreSQL's max_wal_size is under 4 GB on this server; under load it checkpoints every minute or two (8GB suggested)" >&2
    upstreams=""
    order_upstreams=""
    for n in $(seq 1 "$PROCESSES"); do
        port=$((PORT + n))
        # The order process first: the others (reads, and stand-ins for it) run at a lower CPU
        # priority, so that on a full machine its batches and PostgreSQL get the cores first.
        [ "$n" = 1 ] && niceness=0 || niceness="$READ_NICE"
        EXCHANGE_PORT=$port nohup nice -n "$niceness" "$EXCHANGE" serve > "$RUN/app-$n.log" 2>&1 &
        echo $! > "$RUN/app-$n.pid"
        # New orders and cancels go to the first process while it is up, so its order desk places
        # those that arrive together in one transaction; the others stand by for it. Everything
        # else goes to the others, keeping the order process's core for orders (with one process,
        # it serves all).
        [ "$n" = 1 ] && backup="" || backup=" backup"
        order_upstreams="$order_upstreams        server 127.0.0.1:$port max_fails=3 fail_timeout=5s$backup;\n"
        [ "$n" = 1 ] && [ "$PROCESSES" -gt 1 ] && backup=" backup" || backup=""
        upstreams="$upstreams        server 127.0.0.1:$port max_fails=3 fail_timeout=5s$backup;\n"
    done
    for n in $(seq 1 "$PROCESSES"); do
        port=$((PORT + n))
        for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.2; done
        curl -sf "http://127.0.0.1:$port/health" > /dev/null || { echo "app process $n did not start; see $RUN/app-$n.log" >&2; exit 1; }
    done
    UPSTREAMS="$(printf "%b" "$upstreams")" ORDER_UPSTREAMS="$(printf "%b" "$order_upstreams")" RUN="$RUN" PORT="$PORT" \
        envsubst '${UPSTREAMS} ${ORDER_UPSTREAMS} ${RUN} ${PORT}' \
        < "$ROOT/deploy/local/nginx.conf.template" > "$RUN/nginx.conf"
    "$NGINX" -c "$RUN/nginx.conf" -p "$RUN" -e "$RUN/nginx-error.log"
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.2; done
    echo "the exchange is at http://127.0.0.1:$PORT/ ($PROCESSES app processes behind nginx, database $EXCHANGE_DATABASE_URL)"
    echo "operator key: $EXCHANGE_OPERATOR_KEY_FILE"
}

stop() {
    [ -f "$RUN/nginx.pid" ] && "$NGINX" -c "$RUN/nginx.conf" -p "$RUN" -e "$RUN/nginx-error.log" -s quit 2> /dev/null || true
    for pidfile in "$RUN"/app-*.pid; do
        [ -f "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2> /dev/null || true  # SIGTERM: in-flight requests finish first
        rm -f "$pidfile"
    done
    echo "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
