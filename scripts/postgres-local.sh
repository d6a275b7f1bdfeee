#!/usr/bin/env bash
# Private PostgreSQL cluster for development and CI, without systemd and without touching a
# system cluster: the stand-in for a regulator's front-end database (前置库).
#
# Usage: scripts/postgres-local.sh start|stop|status|env
#
#   start    install postgresql (apt-get, root) if missing, create the cluster in $PG_DIR once,
#            start it on a free port on 127.0.0.1 (or reuse the running one), create the
#            database "frontdb", write $PG_DIR/env and print the URL as the last line.
#   stop     stop the cluster (no error if not running).
#   status   exit 0 if the cluster is running, 1 otherwise.
#   env      print $PG_DIR/env (source with: set -a; . FILE; set +a).
#
# Environment (all optional):
#   PG_DIR    absolute state dir (default: $PWD/.run/postgres); every parent must be
#             traversable by the user "postgres" when run as root
#   PG_PORT   a fixed port instead of the first free one from 5433
set -euo pipefail

PG_DIR="${PG_DIR:-$PWD/.run/postgres}"
PG_DIR="${PG_DIR%/}"
ENV_FILE="$PG_DIR/env"
# The cluster's own files must be reachable by the user "postgres": under a root-only home
# (a CI checkout in /root) they go to /var/tmp instead, in a folder named after PG_DIR.
CLUSTER="$PG_DIR"

log() { printf 'postgres-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$PG_DIR" =~ ^/[A-Za-z0-9._/@+,:~-]+$ ]] || die "PG_DIR must be an absolute plain path: '$PG_DIR'"

pg_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$found" ] && echo "$found"
}

# initdb and the server refuse to run as root: as root they run as "postgres"
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_if_missing() {
    [ -n "$(pg_bin)" ] && return
    [ "$(id -u)" = 0 ] || die "postgresql is not installed and installing needs root"
    log "installing postgresql (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

free_port() {
    local port="${PG_PORT:-5433}"
    while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

running() {
    local bin
    bin=$(pg_bin) || return 1
    [ -f "$CLUSTER/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$CLUSTER/data" status >/dev/null 2>&1
}

url() { echo "postgresql+psycopg://postgres@127.0.0.1:$(cat "$PG_DIR/port")/frontdb"; }

choose_cluster_dir() {
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PG_DIR"; then
        CLUSTER="/var/tmp/jianhu-postgres-$(printf %s "$PG_DIR" | md5sum | cut -c1-12)"
    fi
}

start() {
    install_if_missing
    local bin
    bin=$(pg_bin) || die "no PostgreSQL binaries under /usr/lib/postgresql"
    mkdir -p "$CLUSTER/sock"
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$CLUSTER"; fi
    if ! running; then
        if [ ! -f "$CLUSTER/data/PG_VERSION" ]; then
            as_owner "$bin/initdb" -D "$CLUSTER/data" -U postgres --auth=trust -E UTF8 \
                --locale=C.UTF-8 >/dev/null
        fi
        free_port >"$PG_DIR/port"
        as_owner "$bin/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 \
            -o "-p $(cat "$PG_DIR/port") -k $CLUSTER/sock -c listen_addresses=127.0.0.1" \
            start >/dev/null || die "the cluster did not start; see $CLUSTER/server.log"
        log "started on port $(cat "$PG_DIR/port") in $PG_DIR"
    fi
    local psql=("$bin/psql" -h 127.0.0.1 -p "$(cat "$PG_DIR/port")" -U postgres -qAt)
    if [ "$("${psql[@]}" -c "select 1 from pg_database where datname = 'frontdb'")" != 1 ]; then
        "${psql[@]}" -c "create database frontdb" >/dev/null
    fi
    echo "JIANHU_TEST_POSTGRES_URL=$(url)" >"$ENV_FILE"
    url
}

stop() {
    local bin
    bin=$(pg_bin) || return 0
    if running; then
        as_owner "$bin/pg_ctl" -D "$CLUSTER/data" -m fast -w stop >/dev/null
        log "stopped"
    fi
}

choose_cluster_dir
case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) running ;;
    env) cat "$ENV_FILE" ;;
    *) sed -n '5,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
