"""Search-index tables of the SQLite store: one table per parameter kind, kept in step with a
resource in the same transaction as its new version, so an index never disagrees with the data.

A row is keyed by the resource's ``rid`` (an integer that ``resource_current`` gives each
resource when it is first written, so new resources' rows are appended, not scattered through
the file as their hash-like ids would scatter them) and by ``pid``, the number of its
(type, parameter) in ``ix_param``. Each table is clustered by (rid, pid, n): dropping or diffing
a resource's rows and checking a clause for one candidate read one range; one secondary index
by value serves the lookups. Compared with rows keyed by type, id and parameter text in a table
and two indexes (and a third for reference targets), a commit writes about a third of the
bytes, and the file is half the size."""

import logging
import sqlite3
from collections.abc import Iterable
from typing import Any

from hub.base.logs import log_event
from store.index import IndexRows

log = logging.getLogger(__name__)

# kind -> value columns (after rid, pid, n)
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
    statements = [
        "CREATE TABLE IF NOT EXISTS ix_param (pid INTEGER PRIMARY KEY, type TEXT NOT NULL, "
        "param TEXT NOT NULL, UNIQUE (type, param));"
    ]
    for kind, columns in KINDS.items():
        statements.append(
            f"CREATE TABLE IF NOT EXISTS ix_{kind} (rid INTEGER NOT NULL, pid INTEGER NOT NULL, "
            f"n INTEGER NOT NULL, {', '.join(columns)}, PRIMARY KEY (rid, pid, n)) WITHOUT ROWID;"
        )
        # the value lookup ends with the rid, so a driving clause reads this index alone
        statements.append(
            f"CREATE INDEX IF NOT EXISTS ix_{kind}_by_value ON ix_{kind} "
            f"(pid, {LOOKUP_COLUMNS[kind]}, rid);"
        )
    return "\n".join(statements)


class ParamIds:
    """(type, parameter) -> pid. Every parameter that has rows is numbered when the store
    opens (``number``), so no write ever adds one that its rollback could take away again."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], int] = {}

    def number(self, db: sqlite3.Connection, pairs: Iterable[tuple[str, str]]) -> None:
        db.executemany("INSERT OR IGNORE INTO ix_param (type, param) VALUES (?, ?)", list(pairs))
        rows = db.execute("SELECT pid, type, param FROM ix_param")
        self._known = {(type_, param): pid for pid, type_, param in rows}

    def pid(self, type: str, param: str) -> int:
        found = self._known.get((type, param))
        if found is None:
            raise KeyError(f"{type}.{param} has no index rows of its own")
        return found


def drop_index(db: sqlite3.Connection, rid: int) -> None:
    for kind in KINDS:
        db.execute(f"DELETE FROM ix_{kind} WHERE rid = ?", (rid,))


def replace_index(
    db: sqlite3.Connection,
    rid: int,
    type: str,
    rows: IndexRows,
    had_index: bool,
    pids: ParamIds,
) -> None:
    """Make the resource's index rows ``rows`` (inside the write's transaction), touching only
    the rows that changed: an update usually keeps most values (the code, the subject)."""
    for kind, columns in KINDS.items():
        wanted = [
            (pids.pid(type, param), *values)
            for param, *values in dict.fromkeys(getattr(rows, kind))  # a value twice is one row
        ]
        if not had_index:
            _insert(db, kind, columns, rid, wanted, 0)
            continue
        held: dict[tuple[Any, ...], list[int]] = {}
        top = -1
        for pid, n, *values in db.execute(
            f"SELECT pid, n, {', '.join(columns)} FROM ix_{kind} WHERE rid = ?", (rid,)
        ):
            held.setdefault((pid, *values), []).append(n)
            top = max(top, n)
        keep = set(wanted)
        stale = [
            (rid, key[0], n)
            for key, numbers in held.items()
            for n in (numbers if key not in keep else numbers[1:])
        ]
        if stale:
            db.executemany(f"DELETE FROM ix_{kind} WHERE rid = ? AND pid = ? AND n = ?", stale)
        _insert(db, kind, columns, rid, [v for v in wanted if v not in held], top + 1)


def _insert(
    db: sqlite3.Connection,
    kind: str,
    columns: tuple[str, ...],
    rid: int,
    values: Iterable[tuple[Any, ...]],
    first_n: int,
) -> None:
    rows = [(rid, pid, first_n + n, *rest) for n, (pid, *rest) in enumerate(values)]
    if rows:
        marks = ", ".join("?" * (len(columns) + 3))
        db.executemany(f"INSERT INTO ix_{kind} VALUES ({marks})", rows)


# --- files made before rid-keyed rows ---
def is_first_schema(db: sqlite3.Connection) -> bool:
    columns = {row[1] for row in db.execute("PRAGMA table_info(resource_current)")}
    return bool(columns) and "rid" not in columns


def rekey(db: sqlite3.Connection, stored: Iterable[tuple[str, str]], current_schema: str) -> None:
    """Move a first-schema file's rows to rid-keyed tables, in SQL (no re-extraction), keeping
    only the parameters that still have rows of their own (``stored``). One transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        old_kinds = [kind for kind in KINDS if f"ix_{kind}" in tables]
        for kind in old_kinds:
            db.execute(f"DROP INDEX IF EXISTS ix_{kind}_by_value")
            db.execute(f"DROP INDEX IF EXISTS ix_{kind}_by_owner")
            db.execute(f"ALTER TABLE ix_{kind} RENAME TO ix_{kind}_old")
        db.execute("DROP INDEX IF EXISTS ix_reference_target")
        db.execute("ALTER TABLE resource_current RENAME TO resource_current_old")
        for statement in current_schema.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(
            "INSERT INTO resource_current (type, id, version, seq, digest) "
            "SELECT type, id, version, seq, digest FROM resource_current_old ORDER BY seq"
        )
        db.executemany("INSERT OR IGNORE INTO ix_param (type, param) VALUES (?, ?)", list(stored))
        for position, kind in enumerate(old_kinds, start=1):
            values = ", ".join(f"o.{column}" for column in KINDS[kind])
            moved = db.execute(
                f"INSERT INTO ix_{kind} SELECT c.rid, p.pid, "
                "row_number() OVER (PARTITION BY c.rid, p.pid) - 1, "
                f"{values} FROM ix_{kind}_old o "
                "JOIN resource_current c ON c.type = o.type AND c.id = o.id "
                "JOIN ix_param p ON p.type = o.type AND p.param = o.param"
            ).rowcount
            db.execute(f"DROP TABLE ix_{kind}_old")
            step = f"{position}/{len(old_kinds)}"
            log_event(log, "index_rekeyed", table=f"ix_{kind}", rows=moved, step=step)
        db.execute("DROP TABLE resource_current_old")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
