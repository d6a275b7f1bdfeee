#!/usr/bin/env bash
# The whole test suite: install what it needs, start a private RabbitMQ node, lint, type-check,
# run every test, stop the node. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
bash scripts/browser.sh

# No cache: whether an import is first-party depends on folders, not on the file ruff caches by,
# so a cached result can pass here and fail on a fresh clone.
.venv/bin/ruff check --no-cache .
.venv/bin/ruff format --no-cache --check .
.venv/bin/mypy

if [ -z "${JIANHU_TEST_AMQP_URL:-}" ]; then
    export RMQ_DIR="$PWD/.run/rabbitmq-test"
    bash scripts/rabbitmq-local.sh start >/dev/null
    trap 'bash scripts/rabbitmq-local.sh stop >/dev/null 2>&1 || true' EXIT
    set -a
    # shellcheck disable=SC1091
    . "$RMQ_DIR/env"
    set +a
fi
.venv/bin/pytest "$@"
