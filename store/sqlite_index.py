"""Search-index tables of the SQLite store: one table per parameter kind, rewritten for a
resource in the same transaction as its new version, so an index never disagrees with the data."""

import sqlite3
from typing import Any

from store.index import IndexRows

# kind -> value columns (after type, id, param); the first index serves "param = value" lookups.
KINDS: dict[str, tuple[str, ...]] = {
    "token": ("system", "code"),
    "token_text": ("text",),
    "string": ("norm", "exact"),
    "date": ("lo", "hi"),
    "reference": ("target",),
    "quantity": ("value", "system", "code"),
    "number": ("value",),
    "uri": ("value",),
    "composite": ("c1_system", "c1_code", "c2_system", "c2_code", "c2_lo", "c2_hi"),
}
LOOKUP_COLUMNS = {
    "token": "code, system",
    "token_text": "text",
    "string": "norm",
    "date": "lo, hi",
    "reference": "target",
    "quantity": "value",
    "number": "value",
    "uri": "value",
    "composite": "c1_code, c2_code",
}


def schema() -> str:
    statements = []
    for kind, columns in KINDS.items():
        statements.append(
            f"CREATE TABLE IF NOT EXISTS ix_{kind} "
            f"(type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, {', '.join(columns)});"
        )
        # the value lookup ends with the id, so a driving clause reads this index alone
        statements.append(f"DROP INDEX IF EXISTS ix_{kind}_lookup;")
        statements.append(
            f"CREATE INDEX IF NOT EXISTS ix_{kind}_by_value ON ix_{kind} "
            f"(type, param, {LOOKUP_COLUMNS[kind]}, id);"
        )
        # (type, id) first, then every value: dropping a resource's rows and checking a clause
        # for one candidate (EXISTS) both read this index alone, never the table
        statements.append(f"DROP INDEX IF EXISTS ix_{kind}_owner;")
        statements.append(
            f"CREATE INDEX IF NOT EXISTS ix_{kind}_by_owner ON ix_{kind} "
            f"(type, id, param, {', '.join(columns)});"
        )
    # $everything and _revinclude look a target up across every type and parameter
    statements.append("CREATE INDEX IF NOT EXISTS ix_reference_target ON ix_reference (target);")
    return "\n".join(statements)


def drop_index(db: sqlite3.Connection, type: str, id: str) -> None:
    for kind in KINDS:
        db.execute(f"DELETE FROM ix_{kind} WHERE type=? AND id=?", (type, id))


def replace_index(
    db: sqlite3.Connection, type: str, id: str, rows: IndexRows, had_index: bool
) -> None:
    """Make the resource's index rows ``rows`` (inside the write's transaction), touching only
    the rows that changed: an update usually keeps most values (the code, the subject)."""
    for kind, columns in KINDS.items():
        wanted = list(dict.fromkeys(getattr(rows, kind)))  # a value twice is one row
        if not had_index:
            _insert(db, kind, columns, type, id, wanted)
            continue
        held: dict[tuple[Any, ...], list[int]] = {}
        for rowid, *values in db.execute(
            f"SELECT rowid, param, {', '.join(columns)} FROM ix_{kind} WHERE type=? AND id=?",
            (type, id),
        ):
            held.setdefault(tuple(values), []).append(rowid)
        keep = set(wanted)
        stale = [
            r for values, ids in held.items() for r in (ids if values not in keep else ids[1:])
        ]
        if stale:
            db.executemany(f"DELETE FROM ix_{kind} WHERE rowid=?", [(r,) for r in stale])
        _insert(db, kind, columns, type, id, [v for v in wanted if v not in held])


def _insert(
    db: sqlite3.Connection,
    kind: str,
    columns: tuple[str, ...],
    type: str,
    id: str,
    values: list[tuple[Any, ...]],
) -> None:
    if values:
        marks = ", ".join("?" * (len(columns) + 3))
        db.executemany(
            f"INSERT INTO ix_{kind} VALUES ({marks})", [(type, id, *value) for value in values]
        )
