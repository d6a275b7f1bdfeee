#!/usr/bin/env bash
# Create .venv with the locked dependencies (Python 3.11), once per change of the lock files.
# `bootstrap.sh run`: what running the hub needs (requirements-run.lock, about 40 packages);
# `bootstrap.sh dev`: that and the test and lint tools (requirements.lock). A .venv made for
# development serves running too.
set -euo pipefail
kind="${1:-run}"
case "$kind" in
    run) lock=requirements-run.lock ;;
    dev) lock=requirements.lock ;;
    *) echo "bootstrap: say run or dev, not $kind" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "bootstrap: Python 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
}
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi

stamp=.venv/.lock-sha256
digest() { sha256sum "$1" pyproject.toml | sha256sum | cut -d' ' -f1; }
want="$kind $(digest "$lock")"
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$kind" = run ] && [ "$have" = "dev $(digest requirements.lock)" ]; then
    have="$want"  # the development environment has everything running needs
fi
if [ ! -x .venv/bin/python ] || [ "$have" != "$want" ]; then
    echo "bootstrap: installing $lock into .venv" >&2
    "$PYTHON" -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r "$lock"
    .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
fi
