#!/usr/bin/env bash
# Run the hub with its embedded defaults (SQLite store and bus under ./data, HTTP on 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh run
exec .venv/bin/jianhu run "$@"
