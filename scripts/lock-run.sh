#!/usr/bin/env bash
# Write requirements-run.lock: the packages running the hub needs (pyproject's dependencies,
# without the dev extra), at the versions requirements.lock pins. Run after changing either.
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp)
trap 'rm -f "$report"' EXIT
.venv/bin/pip install --dry-run --ignore-installed --quiet --disable-pip-version-check \
    --report "$report" -c requirements.lock . >/dev/null
.venv/bin/python - "$report" > requirements-run.lock <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
pins = sorted(
    (item["metadata"]["name"].lower(), item["metadata"]["version"])
    for item in report["install"]
    if item["metadata"]["name"].lower() != "jianhu"
)
print("# What running the hub needs, at requirements.lock's versions (scripts/lock-run.sh).")
for name, version in pins:
    print(f"{name}=={version}")
PY
echo "lock-run: $(grep -vc '^#' requirements-run.lock) packages in requirements-run.lock" >&2
