"""The writer thread's side of a plan on SQLite (``store.sqlite_resources``): each write
decided against what the file holds at that moment (``store.plan.decide``), and a new version
written with its current pointer, its index rows and its correlation id."""

import sqlite3
from datetime import datetime
from typing import Any

import orjson

from hub.base.correlation import Origin
from store.index import IndexRows, extract, with_last_updated
from store.plan import (
    LEFT,
    UNCHANGED,
    Current,
    NewVersion,
    Write,
    WriteMode,
    Written,
    decide,
    needs_body,
    stamped,
)
from store.sqlite_index import ParamIds, drop_index, replace_index
from store.versions import Resource, StoredVersion


def version_row(type: str, id: str, version: int, last_updated: str, body: Any) -> StoredVersion:
    moment = datetime.fromisoformat(last_updated.replace("Z", "+00:00"))
    return StoredVersion(type, id, version, moment, bytes(body) if body is not None else None)


def apply_write(
    db: sqlite3.Connection, write: Write, now: str, pids: ParamIds, origin: Origin | None
) -> Written:
    current = _current(db, write)
    decision = decide(write, current)
    if decision is LEFT:
        return Written(None)
    if decision is UNCHANGED:
        row = db.execute(
            "SELECT v.version, v.last_updated, v.body FROM resource_current c "
            "JOIN resource_version v ON v.seq = c.seq WHERE c.type=? AND c.id=?",
            (write.type, write.id),
        ).fetchone()
        return Written(version_row(write.type, write.id, *row))
    assert isinstance(decision, NewVersion)
    had_index = current.version > 0 and not current.deleted
    stored = _write_version(db, write, decision, now, had_index, pids, origin)
    return Written(stored, created=decision.created, changed=True)


def _current(db: sqlite3.Connection, write: Write) -> Current:
    body_column = "v.body" if needs_body(write) else "NULL"
    row = db.execute(
        f"SELECT c.version, v.body IS NULL, c.digest, {body_column} FROM resource_current c "
        "JOIN resource_version v ON v.seq = c.seq WHERE c.type=? AND c.id=?",
        (write.type, write.id),
    ).fetchone()
    if row is None:
        return Current(0, True, None)
    version, deleted, digest, body = row
    return Current(version, bool(deleted), digest, orjson.loads(body) if body else None)


def _write_version(
    db: sqlite3.Connection,
    write: Write,
    decision: NewVersion,
    now: str,
    had_index: bool,
    pids: ParamIds,
    origin: Origin | None,
) -> StoredVersion:
    type_, id_, version = write.type, write.id, decision.version
    source = origin.source if origin is not None else None
    stored = (
        stamped(decision.resource, version, now, source) if decision.resource is not None else None
    )
    raw = orjson.dumps(stored) if stored is not None else None
    seq = db.execute(
        "INSERT INTO resource_version (type, id, version, last_updated, body, correlation) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (type_, id_, version, now, raw, origin.correlation if origin is not None else None),
    ).lastrowid
    (rid,) = db.execute(
        "INSERT INTO resource_current (type, id, version, seq, digest) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (type, id) DO UPDATE SET version=excluded.version, seq=excluded.seq, "
        "digest=excluded.digest RETURNING rid",
        (type_, id_, version, seq, decision.digest),
    ).fetchone()
    if stored is None:
        drop_index(db, rid)
    else:
        replace_index(db, rid, type_, _index_rows(write, stored, now), had_index, pids)
    return version_row(type_, id_, version, now, raw)


def _index_rows(write: Write, stored: Resource, now: str) -> IndexRows:
    """The caller's rows when it could extract them (the content it gave is what is stored),
    else extracted here; ``_lastUpdated`` is known only now."""
    given = write.index if write.mode is not WriteMode.MERGE else None
    return with_last_updated(given if given is not None else extract(stored), now)
