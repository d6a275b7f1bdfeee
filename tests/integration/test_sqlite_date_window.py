"""What began within a window is one seek of the SQLite date index, bounded on both sides,
not a walk of every resource of the type: the S1 day count reads a day, not the history."""

import sqlite3
from pathlib import Path

from store.query import parse_search
from store.sqlite import SqliteStore
from store.sqlite_search import compile_query


async def test_a_window_is_one_bounded_seek(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.sqlite3")
    await store.open()
    await store.close()
    pairs = [("date", "sa2026-12-02T23:59:59+08:00"), ("date", "lt2026-12-04T00:00:00+08:00")]
    where, params = compile_query(parse_search("Encounter", pairs))
    sql = f"SELECT c.id FROM resource_current c WHERE {where} ORDER BY c.id"
    with sqlite3.connect(tmp_path / "hub.sqlite3") as db:
        plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "ix_date_by_value (pid=? AND lo>? AND lo<?)" in plan
    assert "SCAN c" not in plan
