#!/usr/bin/env bash
# Private RabbitMQ node for development and CI, without systemd and without
# touching the system broker (see shared specs: local_services.md, section 2).
#
# Usage: scripts/rabbitmq-local.sh start|stop|restart-node|status|env
#
#   start         install rabbitmq-server (apt-get, root) if missing, pick free
#                 ports, start the node (or reuse a running one from the same
#                 RMQ_DIR), wait until AMQP and the management API answer,
#                 write $RMQ_DIR/env and print the AMQP URL as the last line.
#   stop          stop the node and its private epmd (no error if not running).
#   restart-node  stop and start the node with the same ports and data
#                 (mnesia, so durable/quorum queues keep their messages).
#   status        exit 0 if the node is running, 1 otherwise.
#   env           print $RMQ_DIR/env (source with: set -a; . FILE; set +a).
#
# Environment (all optional):
#   RMQ_DIR                 absolute state dir (default: $PWD/.run/rabbitmq)
#   RMQ_AMQP_PORT, RMQ_DIST_PORT, RMQ_EPMD_PORT, RMQ_MGMT_PORT
#                           fixed ports instead of the first free ones from
#                           5673 / 25673 / 4370 / 15673 (used only when no node
#                           of this RMQ_DIR is running)
#   RMQ_START_TIMEOUT       seconds to wait for readiness (default 75)
#
# Every variable the node needs (HOME, RABBITMQ_*, ERL_EPMD_PORT, PATH) is set
# inside this script only; the caller's environment is left untouched.
set -euo pipefail

readonly RMQ_BIN=/usr/lib/rabbitmq/bin
readonly NODENAME=hub@localhost

RMQ_DIR="${RMQ_DIR:-$PWD/.run/rabbitmq}"
RMQ_DIR="${RMQ_DIR%/}"
START_TIMEOUT="${RMQ_START_TIMEOUT:-75}"

log() { printf 'rabbitmq-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    awk 'NR >= 5 && /^#/ { sub(/^# ?/, ""); print; next } NR >= 5 { exit }' "$0" >&2
    exit "$1"
}

# The env file is read by shells and by Python tests alike, so values are
# written unquoted; refuse paths that would need quoting.
[[ "$RMQ_DIR" == /* ]] || die "RMQ_DIR must be an absolute path (got '$RMQ_DIR')"
[[ "$RMQ_DIR" =~ ^/[A-Za-z0-9._/@+,:~-]+$ ]] \
    || die "RMQ_DIR contains characters that are not supported (spaces, quotes, ...): '$RMQ_DIR'"

PORTS_FILE="$RMQ_DIR/ports"
ENV_FILE="$RMQ_DIR/env"
PID_FILE="$RMQ_DIR/rabbit.pid"
LOG_DIR="$RMQ_DIR/log"

AMQP_PORT="" DIST_PORT="" EPMD_PORT="" MGMT_PORT=""

# --------------------------------------------------------------------------
# helpers

now() { date +%s; }

remaining() {  # seconds left before $DEADLINE, at least 1
    local r=$((DEADLINE - $(now)))
    ((r > 0)) || r=1
    echo "$r"
}

min() { if (($1 < $2)); then echo "$1"; else echo "$2"; fi; }

port_free() {  # port_free PORT -> 0 if nothing listens on / holds 127.0.0.1:PORT
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# SO_REUSEADDR like the Erlang listeners: TIME_WAIT leftovers do not count as busy
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

pick_port() {  # pick_port PREFERRED TAKEN... -> first free port >= PREFERRED not in TAKEN
    local p=$1 q
    shift
    while ((p < 65000)); do
        local clash=0
        for q in "$@"; do [[ "$q" == "$p" ]] && clash=1; done
        if ((!clash)) && port_free "$p"; then
            echo "$p"
            return 0
        fi
        p=$((p + 1))
    done
    die "no free port found from $1"
}

load_ports() {  # load saved ports; return 1 if there are none
    [[ -f "$PORTS_FILE" ]] || return 1
    local k v
    while IFS='=' read -r k v; do
        case "$k" in
            RMQ_AMQP_PORT) AMQP_PORT=$v ;;
            RMQ_DIST_PORT) DIST_PORT=$v ;;
            RMQ_EPMD_PORT) EPMD_PORT=$v ;;
            RMQ_MGMT_PORT) MGMT_PORT=$v ;;
        esac
    done <"$PORTS_FILE"
    [[ -n "$AMQP_PORT" && -n "$DIST_PORT" && -n "$EPMD_PORT" && -n "$MGMT_PORT" ]]
}

save_ports() {
    printf 'RMQ_AMQP_PORT=%s\nRMQ_DIST_PORT=%s\nRMQ_EPMD_PORT=%s\nRMQ_MGMT_PORT=%s\n' \
        "$AMQP_PORT" "$DIST_PORT" "$EPMD_PORT" "$MGMT_PORT" >"$PORTS_FILE.tmp"
    mv -f "$PORTS_FILE.tmp" "$PORTS_FILE"
}

choose_ports() {
    # Order of preference: env override, the port saved by an earlier start
    # (if still free, so the URL stays stable), the first free default.
    local saved_amqp="" saved_dist="" saved_epmd="" saved_mgmt=""
    if load_ports; then
        saved_amqp=$AMQP_PORT saved_dist=$DIST_PORT saved_epmd=$EPMD_PORT saved_mgmt=$MGMT_PORT
    fi
    AMQP_PORT=$(choose_one "${RMQ_AMQP_PORT:-}" "$saved_amqp" 5673)
    DIST_PORT=$(choose_one "${RMQ_DIST_PORT:-}" "$saved_dist" 25673 "$AMQP_PORT")
    EPMD_PORT=$(choose_one "${RMQ_EPMD_PORT:-}" "$saved_epmd" 4370 "$AMQP_PORT" "$DIST_PORT")
    MGMT_PORT=$(choose_one "${RMQ_MGMT_PORT:-}" "$saved_mgmt" 15673 "$AMQP_PORT" "$DIST_PORT" "$EPMD_PORT")
    save_ports
}

choose_one() {  # choose_one OVERRIDE SAVED DEFAULT TAKEN...
    local override=$1 saved=$2 default=$3
    shift 3
    if [[ -n "$override" ]]; then
        [[ "$override" =~ ^[0-9]+$ ]] || die "port override '$override' is not a number"
        port_free "$override" || die "port $override (from environment) is in use"
        echo "$override"
    elif [[ -n "$saved" ]] && port_free "$saved" && ! [[ " $* " == *" $saved "* ]]; then
        echo "$saved"
    else
        pick_port "$default" "$@"
    fi
}

setup_env() {  # export everything the server and the CLI tools need
    export PATH="$RMQ_BIN:$PATH"
    export HOME="$RMQ_DIR/home"                     # cookie = $HOME/.erlang.cookie
    export RABBITMQ_NODENAME="$NODENAME"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$AMQP_PORT"
    export RABBITMQ_DIST_PORT="$DIST_PORT"
    export ERL_EPMD_PORT="$EPMD_PORT"               # private epmd
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    export RABBITMQ_LOG_BASE="$LOG_DIR"
    export RABBITMQ_PID_FILE="$PID_FILE"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    export RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq"  # -> rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
    export RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"  # not /etc/rabbitmq's
    # Erlang distribution only on loopback.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    unset RABBITMQ_ENV_LOADED RABBITMQ_NODE_ONLY RABBITMQ_ALLOW_INPUT
}

node_pid() {  # print the pid of this RMQ_DIR's beam process, if alive
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid=$(tr -dc '0-9' <"$PID_FILE")
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    # guard against pid reuse: the beam command line names our private HOME
    local cmdline
    cmdline=" $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) "
    [[ "$cmdline" == *" -home $RMQ_DIR/home "* ]] || return 1
    echo "$pid"
}

ping_node() {
    timeout 20 rabbitmq-diagnostics -q ping --timeout 10 >/dev/null 2>&1
}

is_running() {  # needs setup_env
    node_pid >/dev/null && ping_node
}

show_logs() {
    log "node did not become ready; tail of the logs in $LOG_DIR:"
    local f
    for f in "$LOG_DIR"/*; do
        [[ -f "$f" ]] || continue
        printf '==> %s <==\n' "$f" >&2
        tail -n 40 "$f" >&2 || true
    done
}

fail_start() {
    log "$*"
    show_logs
    local p
    for p in "$AMQP_PORT" "$DIST_PORT" "$EPMD_PORT" "$MGMT_PORT"; do
        port_free "$p" || log "note: port $p is in use now"
    done
    # do not leave a half-started node or its private epmd behind
    stop_node
    stop_epmd
    exit 1
}

http_ok() {  # http_ok URL -> 0 if GET with guest:guest answers 2xx
    local url=$1
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 5 -u guest:guest "$url" 2>/dev/null
    else
        python3 - "$url" <<'EOF' 2>/dev/null
import base64, sys, urllib.request
req = urllib.request.Request(sys.argv[1])
req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
urllib.request.urlopen(req, timeout=5).read()
EOF
    fi
}

write_env_file() {
    {
        echo "RMQ_DIR=$RMQ_DIR"
        echo "RMQ_AMQP_PORT=$AMQP_PORT"
        echo "RMQ_DIST_PORT=$DIST_PORT"
        echo "RMQ_EPMD_PORT=$EPMD_PORT"
        echo "RMQ_MGMT_PORT=$MGMT_PORT"
        echo "RMQ_NODENAME=$NODENAME"
        echo "JIANHU_TEST_AMQP_URL=$(amqp_url)"
        echo "JIANHU_TEST_RABBITMQ_MGMT_URL=http://127.0.0.1:$MGMT_PORT/"
    } >"$ENV_FILE.tmp"
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

amqp_url() { echo "amqp://guest:guest@127.0.0.1:$AMQP_PORT/"; }

# --------------------------------------------------------------------------
# install / prepare

ensure_installed() {
    [[ -x "$RMQ_BIN/rabbitmq-server" ]] && return 0
    [[ "$(id -u)" == 0 ]] || die "rabbitmq-server is not installed and installing it needs root (apt-get install rabbitmq-server)"
    log "installing rabbitmq-server with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q rabbitmq-server >&2
    [[ -x "$RMQ_BIN/rabbitmq-server" ]] || die "rabbitmq-server still missing after apt-get install"
}

prepare_dir() {
    mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$LOG_DIR"
    if [[ ! -f "$HOME/.erlang.cookie" ]]; then
        (
            umask 077
            head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$HOME/.erlang.cookie"
        )
        chmod 400 "$HOME/.erlang.cookie"
    fi
    : >"$RABBITMQ_CONF_ENV_FILE"
    printf '%s\n' \
        "management.tcp.ip = 127.0.0.1" \
        "management.tcp.port = $MGMT_PORT" \
        >"$RMQ_DIR/rabbitmq.conf"
    if ! grep -qs rabbitmq_management "$RABBITMQ_ENABLED_PLUGINS_FILE"; then
        echo '[].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
        timeout 60 rabbitmq-plugins -q --offline enable rabbitmq_management >/dev/null \
            || die "rabbitmq-plugins --offline enable rabbitmq_management failed"
    fi
}

# --------------------------------------------------------------------------
# start / stop

wait_ready() {
    local t
    # 1. the node registers with epmd after about 1 s (await_startup before
    #    that fails with rc 69)
    until ping_node; do
        node_pid >/dev/null || { sleep 1; node_pid >/dev/null || fail_start "the node process exited during start-up"; }
        (($(now) < DEADLINE)) || fail_start "timed out waiting for 'rabbitmq-diagnostics ping'"
        sleep 0.3
    done
    # 2. the broker is fully booted
    t=$(min "$(remaining)" 60)
    timeout $((t + 10)) rabbitmqctl -q await_startup --timeout "$t" >/dev/null 2>&1 \
        || fail_start "rabbitmqctl await_startup failed"
    # 3. the listeners accept connections
    t=$(min "$(remaining)" 30)
    timeout "$t" rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 \
        || fail_start "rabbitmq-diagnostics check_port_connectivity failed"
    # 4. the management API answers
    local url="http://127.0.0.1:$MGMT_PORT/api/overview"
    until http_ok "$url"; do
        (($(now) < DEADLINE)) || fail_start "management API $url does not answer"
        sleep 0.5
    done
}

start_node() {  # ports are chosen and setup_env is done
    prepare_dir
    rm -f "$PID_FILE" "$ENV_FILE"
    log "starting $NODENAME (amqp $AMQP_PORT, dist $DIST_PORT, epmd $EPMD_PORT, management $MGMT_PORT) in $RMQ_DIR"
    DEADLINE=$(($(now) + START_TIMEOUT))
    # -detached returns at once; its own output goes to a file for diagnosis
    # (9>&-: the long-lived node must not inherit the start lock)
    rabbitmq-server -detached >"$LOG_DIR/detached.out" 2>&1 9>&- \
        || fail_start "rabbitmq-server -detached failed"
    # the pid file appears shortly after
    local pid_deadline=$(($(now) + 15))
    until node_pid >/dev/null; do
        (($(now) < pid_deadline)) || fail_start "no running node after 15 s (pid file $PID_FILE)"
        sleep 0.2
    done
    wait_ready
    write_env_file
    log "ready; management at http://127.0.0.1:$MGMT_PORT/"
}

stop_node() {  # needs saved ports + setup_env
    local pid
    if pid=$(node_pid); then
        log "stopping $NODENAME (pid $pid)"
        # returns once the beam process has exited
        timeout 60 rabbitmqctl -q stop "$PID_FILE" >/dev/null 2>&1 || true
        if kill -0 "$pid" 2>/dev/null; then
            log "rabbitmqctl stop did not stop pid $pid; sending TERM"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
        if kill -0 "$pid" 2>/dev/null; then
            log "sending KILL to pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    elif ping_node; then
        # node answers but its pid file is gone
        log "stopping $NODENAME (no pid file)"
        timeout 60 rabbitmqctl -q stop >/dev/null 2>&1 || true
    fi
    rm -f "$PID_FILE"
}

stop_epmd() {
    # -detached spawns 'epmd -daemon', which survives 'rabbitmqctl stop';
    # with the private ERL_EPMD_PORT this kills only our epmd.
    timeout 10 epmd -kill >/dev/null 2>&1 || true
}

# --------------------------------------------------------------------------
# subcommands

take_lock() {
    # Serialise port choice and start-up across RMQ_DIRs, so that two
    # concurrent starts do not pick the same free ports.
    local lock="${TMPDIR:-/tmp}/rabbitmq-local.start.lock"
    command -v flock >/dev/null 2>&1 || return 0
    { exec 9>>"$lock"; } 2>/dev/null || return 0  # e.g. owned by another user
    chmod 666 "$lock" 2>/dev/null || true
    flock -w 90 9 || die "timed out waiting for $lock"
}

cmd_start() {
    take_lock
    if load_ports; then
        setup_env
        if is_running; then
            write_env_file
            log "reusing the running node of $RMQ_DIR"
            amqp_url
            return 0
        fi
        # stale leftovers (crashed node, lingering private epmd)
        if [[ -x "$RMQ_BIN/rabbitmq-server" ]]; then
            stop_node
            stop_epmd
        fi
    fi
    ensure_installed
    mkdir -p "$RMQ_DIR"
    choose_ports
    setup_env
    start_node
    amqp_url
}

cmd_stop() {
    if ! load_ports || [[ ! -x "$RMQ_BIN/rabbitmq-server" ]]; then
        log "no node state in $RMQ_DIR; nothing to stop"
        return 0
    fi
    setup_env
    stop_node
    stop_epmd
    rm -f "$ENV_FILE"
    log "stopped"
}

cmd_restart_node() {
    load_ports || die "no ports saved in $PORTS_FILE; run 'start' first"
    [[ -x "$RMQ_BIN/rabbitmq-server" ]] || die "rabbitmq-server is not installed; run 'start' first"
    take_lock
    setup_env
    stop_node
    # keep the same ports (and the private epmd) so clients reconnect to the
    # same URL; wait briefly for the AMQP port to be released
    for _ in $(seq 1 50); do port_free "$AMQP_PORT" && port_free "$DIST_PORT" && break; sleep 0.2; done
    start_node
    amqp_url
}

cmd_status() {
    if load_ports && [[ -x "$RMQ_BIN/rabbitmq-server" ]]; then
        setup_env
        if is_running; then
            echo "running: $(amqp_url) (management http://127.0.0.1:$MGMT_PORT/)"
            return 0
        fi
    fi
    echo "not running"
    return 1
}

cmd_env() {
    [[ -f "$ENV_FILE" ]] || die "no env file at $ENV_FILE; run 'start' first"
    cat "$ENV_FILE"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart-node) cmd_restart_node ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
esac
