#!/usr/bin/env bash
# Private MariaDB server for development and CI, without systemd and without touching a system
# server: the stand-in for a regulator's MySQL front-end database (前置库).
#
# Usage: scripts/mariadb-local.sh start|stop|status|env
#
#   start    install mariadb-server (apt-get, root) if missing, create the data directory in
#            $MARIA_DIR once, start the server on a free port on 127.0.0.1 (or reuse the running
#            one), create the database "frontdb" and the user jianhu/jianhu, write
#            $MARIA_DIR/env and print the URL as the last line.
#   stop     stop the server (no error if not running).
#   status   exit 0 if the server answers, 1 otherwise.
#   env      print $MARIA_DIR/env (source with: set -a; . FILE; set +a).
#
# Environment (all optional):
#   MARIA_DIR   absolute state dir (default: $PWD/.run/mariadb)
#   MARIA_PORT  a fixed port instead of the first free one from 3307
set -euo pipefail

MARIA_DIR="${MARIA_DIR:-$PWD/.run/mariadb}"
MARIA_DIR="${MARIA_DIR%/}"
ENV_FILE="$MARIA_DIR/env"
SOCK="$MARIA_DIR/mariadb.sock"

log() { printf 'mariadb-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$MARIA_DIR" =~ ^/[A-Za-z0-9._/@+,:~-]+$ ]] \
    || die "MARIA_DIR must be an absolute plain path: '$MARIA_DIR'"

install_if_missing() {
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] && return
    [ "$(id -u)" = 0 ] || die "mariadb-server is not installed and installing needs root"
    log "installing mariadb-server (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
}

free_port() {
    local port="${MARIA_PORT:-3307}"
    while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

client() { mariadb --no-defaults -S "$SOCK" -u root "$@"; }
running() { [ -S "$SOCK" ] && client -e "select 1" >/dev/null 2>&1; }
url() { echo "mysql+pymysql://jianhu:jianhu@127.0.0.1:$(cat "$MARIA_DIR/port")/frontdb"; }

start() {
    install_if_missing
    mkdir -p "$MARIA_DIR"
    if ! running; then
        if [ ! -d "$MARIA_DIR/data/mysql" ]; then
            mariadb-install-db --no-defaults --datadir="$MARIA_DIR/data" --user="$(id -un)" \
                --auth-root-authentication-method=socket >"$MARIA_DIR/install.log" 2>&1 \
                || die "mariadb-install-db failed; see $MARIA_DIR/install.log"
        fi
        free_port >"$MARIA_DIR/port"
        # the server refuses to run as root unless told to; it is a private, loopback-only one
        nohup /usr/sbin/mariadbd --no-defaults --datadir="$MARIA_DIR/data" --socket="$SOCK" \
            --port="$(cat "$MARIA_DIR/port")" --bind-address=127.0.0.1 --user="$(id -un)" \
            --pid-file="$MARIA_DIR/mariadbd.pid" --log-error="$MARIA_DIR/server.log" \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
            >/dev/null 2>&1 &
        local deadline=$(($(date +%s) + 60))
        until running; do
            (($(date +%s) < deadline)) || die "the server did not answer; see $MARIA_DIR/server.log"
            sleep 0.2
        done
        log "started on port $(cat "$MARIA_DIR/port") in $MARIA_DIR"
    fi
    client -e "CREATE DATABASE IF NOT EXISTS frontdb CHARACTER SET utf8mb4;
        CREATE USER IF NOT EXISTS 'jianhu'@'127.0.0.1' IDENTIFIED BY 'jianhu';
        GRANT ALL ON frontdb.* TO 'jianhu'@'127.0.0.1';"
    echo "JIANHU_TEST_MARIADB_URL=$(url)" >"$ENV_FILE"
    url
}

stop() {
    if running; then
        mariadb-admin --no-defaults -S "$SOCK" -u root shutdown
        log "stopped"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) running ;;
    env) cat "$ENV_FILE" ;;
    *) sed -n '5,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
