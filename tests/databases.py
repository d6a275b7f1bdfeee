"""Finds the front-end databases the tests write to: a private PostgreSQL and a private MariaDB.

Order: ``JIANHU_TEST_POSTGRES_URL`` / ``JIANHU_TEST_MARIADB_URL`` (``scripts/test.sh`` starts
both and sets them); else the repository's ``scripts/postgres-local.sh`` and
``scripts/mariadb-local.sh`` (they install and start a private instance). With ``CI=true`` a
database that cannot be found fails the run instead of skipping it."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "postgres": ("postgres-local.sh", "PG_DIR"),
    "mariadb": ("mariadb-local.sh", "MARIA_DIR"),
}


def database_url(kind: str) -> str:
    """The SQLAlchemy URL of a running database of ``kind`` (postgres or mariadb)."""
    found = os.environ.get(f"JIANHU_TEST_{kind.upper()}_URL")
    if found:
        return found
    script, folder = SCRIPTS[kind]
    env = os.environ | {folder: str(REPO / ".run" / f"{kind}-test")}
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / script), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} start failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]
