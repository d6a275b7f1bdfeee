#!/usr/bin/env bash
# The whole test suite: install what it needs, lint, type-check, start a private RabbitMQ node,
# PostgreSQL cluster and MariaDB server, run every test, stop them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
bash scripts/browser.sh

# No cache: whether an import is first-party depends on folders, not on the file ruff caches by,
# so a cached result can pass here and fail on a fresh clone.
.venv/bin/ruff check --no-cache .
.venv/bin/ruff format --no-cache --check .
.venv/bin/mypy

# Private servers for the tests (each installed from Debian's packages when missing), stopped
# when the run ends: RabbitMQ, and the front-end databases the reporting adapters write to.
stops=()
trap 'for stop in "${stops[@]}"; do eval "$stop" >/dev/null 2>&1 || true; done' EXIT
start_server() {  # VARIABLE SCRIPT DIR_VARIABLE: start unless VARIABLE names one already
    local variable=$1 script=$2 folder_variable=$3 folder
    [ -n "${!variable:-}" ] && return
    folder="$PWD/.run/$(basename "$script" -local.sh)-test"
    env "$folder_variable=$folder" bash "scripts/$script" start >/dev/null
    stops+=("env $folder_variable=$folder bash scripts/$script stop")
    set -a
    # shellcheck disable=SC1090
    . "$folder/env"
    set +a
}
start_server JIANHU_TEST_AMQP_URL rabbitmq-local.sh RMQ_DIR
start_server JIANHU_TEST_POSTGRES_URL postgres-local.sh PG_DIR
start_server JIANHU_TEST_MARIADB_URL mariadb-local.sh MARIA_DIR
.venv/bin/pytest "$@"
