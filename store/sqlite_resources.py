"""Versioned FHIR resources in SQLite: every version in ``resource_version``, the current one
pointed at from ``resource_current`` with the digest of its content. A plan of writes is one
job of the file's writer thread, so it commits as a whole and each write sees those before it.

The event relay follows ``resource_version`` itself, from a saved high-water mark: versions are
numbered in commit order (one writer at a time holds the file), so nothing is written twice to
have an event, and an unchanged write, which makes no version, makes no event either."""

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from fhir_profiles.search_params import SUPPORTED_TYPES
from hub.base import correlation
from hub.base.errors import ResourceGoneError, ResourceNotFoundError, SearchError
from hub.base.logs import log_event
from store.cursors import decode_cursor, encode_cursor
from store.index import instant, stored_params
from store.plan import (
    Write,
    WriteShortcuts,
    Written,
)
from store.query import SearchQuery
from store.resources import OutboxEvent, Resource, SearchPage, StoredVersion
from store.sqlite_audit import SqliteAuditLog
from store.sqlite_file import SqliteFile
from store.sqlite_index import ParamIds, is_first_schema, rekey, schema
from store.sqlite_order import after_clause, order_clause, sort_exprs
from store.sqlite_search import compile_query
from store.sqlite_writes import apply_write, version_row

SCHEMA = """
CREATE TABLE IF NOT EXISTS resource_version (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,       -- commit order: history cursor, event order
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    body BLOB,                                  -- NULL: this version is a deletion
    correlation TEXT,                           -- of the message or request that wrote it
    UNIQUE (type, id, version)
);
CREATE INDEX IF NOT EXISTS ix_resource_version_type ON resource_version (type, seq);
CREATE TABLE IF NOT EXISTS resource_current (
    rid INTEGER PRIMARY KEY,                     -- the index rows' key: in order of creation
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    digest TEXT,                                 -- of the content: an unchanged write is seen
    UNIQUE (type, id)
);
CREATE TABLE IF NOT EXISTS relay_mark (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL                         -- versions up to this one are published
) WITHOUT ROWID;
"""
# Partial: versions written without an origin (seeds, older files) take no room in it.
CORRELATION_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_resource_version_correlation "
    "ON resource_version (correlation) WHERE correlation IS NOT NULL"
)
EVENTS_MARK = "events"
log = logging.getLogger(__name__)


def _prepare(db: sqlite3.Connection) -> None:
    """The schema, on a new file or one made before rid-keyed index rows (moved over once)."""
    if not is_first_schema(db):
        db.executescript(SCHEMA + schema())
        _add_correlation(db)
        return
    columns = {row[1] for row in db.execute("PRAGMA table_info(resource_current)")}
    if "digest" not in columns:
        db.execute("ALTER TABLE resource_current ADD COLUMN digest TEXT")
    log_event(log, "index_rekeying", file=str(db.execute("PRAGMA database_list").fetchone()[2]))
    stored = [(t, p.code) for t in SUPPORTED_TYPES for p in stored_params(t)]
    rekey(db, stored, SCHEMA + schema())
    _add_correlation(db)


def _add_correlation(db: sqlite3.Connection) -> None:
    """Files made before versions kept their correlation id get the column (empty for the
    versions already there)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(resource_version)")}
    if "correlation" not in columns:
        db.execute("ALTER TABLE resource_version ADD COLUMN correlation TEXT")
    db.execute(CORRELATION_INDEX)


def _migrate(db: sqlite3.Connection) -> None:
    """Files made before the high-water mark: publish what the old outbox still held from its
    oldest version on, then drop it."""
    if db.execute("SELECT 1 FROM relay_mark WHERE name = ?", (EVENTS_MARK,)).fetchone():
        return
    start = db.execute("SELECT COALESCE(MAX(seq), 0) FROM resource_version").fetchone()[0]
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").fetchone():
        oldest = db.execute(
            "SELECT MIN(v.seq) FROM outbox o JOIN resource_version v "
            "ON v.type = o.type AND v.id = o.id AND v.version = o.version"
        ).fetchone()[0]
        if oldest is not None:
            start = oldest - 1
        db.execute("DROP TABLE outbox")
    db.execute("INSERT INTO relay_mark VALUES (?, ?)", (EVENTS_MARK, start))


class SqliteResources(WriteShortcuts):
    """The ``ResourceStore`` of the embedded store."""

    def __init__(self, file: SqliteFile) -> None:
        self._file = file
        self._committed = asyncio.Event()
        self._audit = SqliteAuditLog(file)
        self._pids = ParamIds()  # used by the writer thread only

    async def setup(self) -> None:
        await self._file.writer.run_alone(_prepare)
        await self._file.write(_migrate)
        stored = [(t, p.code) for t in SUPPORTED_TYPES for p in stored_params(t)]
        await self._file.write(lambda db: self._pids.number(db, stored))
        await self._audit.setup()
        self._file.on_commit(self._committed.set)

    # --- writes: plans, run by the writer thread ---
    async def apply(self, writes: Sequence[Write]) -> list[Written]:
        now = instant(datetime.now(UTC))
        pids, origin = self._pids, correlation.current()
        return await self._file.write(
            lambda db: [apply_write(db, w, now, pids, origin) for w in writes]
        )

    @property
    def audit(self) -> SqliteAuditLog:
        return self._audit

    async def append_audit(self, events: Sequence[Resource]) -> list[Resource]:
        return await self._audit.append(events)

    # --- point reads, on the loop ---
    async def read(self, type: str, id: str) -> StoredVersion:
        row = self._file.read.execute(
            "SELECT v.version, v.last_updated, v.body FROM resource_current c "
            "JOIN resource_version v ON v.seq = c.seq WHERE c.type=? AND c.id=?",
            (type, id),
        ).fetchone()
        if row is None:
            raise ResourceNotFoundError(f"{type}/{id} does not exist")
        if row[2] is None:
            raise ResourceGoneError(f"{type}/{id} was deleted (version {row[0]})")
        return version_row(type, id, *row)

    async def vread(self, type: str, id: str, version: int) -> StoredVersion:
        row = self._file.read.execute(
            "SELECT last_updated, body FROM resource_version WHERE type=? AND id=? AND version=?",
            (type, id, version),
        ).fetchone()
        if row is None:
            raise ResourceNotFoundError(f"{type}/{id} has no version {version}")
        if row[1] is None:
            raise ResourceGoneError(f"{type}/{id} version {version} is a deletion")
        return version_row(type, id, version, *row)

    async def digests(self, keys: Sequence[tuple[str, str]]) -> dict[str, str]:
        def look(db: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for start in range(0, len(keys), 400):  # under SQLite's bound-parameter limit
                chunk = keys[start : start + 400]
                pairs = " OR ".join(["(type = ? AND id = ?)"] * len(chunk))
                for type_, id_, digest in db.execute(
                    f"SELECT type, id, digest FROM resource_current WHERE ({pairs}) "
                    "AND digest IS NOT NULL",
                    [part for key in chunk for part in key],
                ):
                    found[f"{type_}/{id_}"] = digest
            return found

        # a message's few resources on the loop; a big one's thousands in a reader thread
        return look(self._file.read) if len(keys) <= 400 else await self._file.scan(look)

    # --- reads that may take a while, in reader threads ---
    async def read_many(self, keys: Sequence[tuple[str, str]]) -> Sequence[StoredVersion]:
        return await self._file.scan(lambda db: _read_many(db, keys))

    async def referencing(self, target: str, limit: int) -> Sequence[StoredVersion]:
        params = referring_params(target.partition("/")[0])
        pairs = ", ".join(["(?, ?)"] * len(params))
        sql = (  # one probe of the value index per parameter that may point there
            "SELECT DISTINCT c.type, c.id FROM ix_reference r "
            "JOIN resource_current c ON c.rid = r.rid WHERE r.target = ? AND r.pid IN "
            f"(SELECT pid FROM ix_param WHERE (type, param) IN (VALUES {pairs})) LIMIT ?"
        )
        args = [target, *(part for pair in params for part in pair), limit]

        def scan(db: sqlite3.Connection) -> list[StoredVersion]:
            if not params:
                return []
            rows = db.execute(sql, args).fetchall()
            return _read_many(db, [(type_, id_) for type_, id_ in rows])

        return await self._file.scan(scan)

    async def search(
        self, query: SearchQuery, count: int = 50, cursor: str | None = None
    ) -> SearchPage:
        where, params = compile_query(query)
        exprs = sort_exprs(query)
        order, order_args = order_clause(exprs)
        if cursor is not None:
            after, after_args = after_clause(exprs, decode_cursor(cursor, len(exprs)))
            where, params = f"{where} AND {after}", [*params, *after_args]
        keys = ", ".join(expr.sql for expr in exprs)
        key_args = [arg for expr in exprs for arg in expr.args]
        sql = (
            f"SELECT c.type, c.id, v.version, v.last_updated, v.body, {keys} "
            "FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
            f"WHERE {where} AND v.body IS NOT NULL ORDER BY {order} LIMIT ?"
        )
        args = (*key_args, *params, *order_args, count + 1)
        rows = await self._file.scan(lambda db: db.execute(sql, args).fetchall())
        page = rows[:count]
        next_cursor = encode_cursor(list(page[-1][5:])) if len(rows) > count else None
        return SearchPage([version_row(*row[:5]) for row in page], next_cursor)

    async def count(self, query: SearchQuery) -> int:
        where, params = compile_query(query)
        sql = (
            "SELECT COUNT(*) FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
            f"WHERE {where} AND v.body IS NOT NULL"
        )
        (total,) = await self._file.scan(lambda db: db.execute(sql, params).fetchone())
        return int(total)

    async def history(
        self,
        type: str | None = None,
        id: str | None = None,
        since: datetime | None = None,
        count: int = 100,
        cursor: str | None = None,
    ) -> SearchPage:
        if cursor is not None and not cursor.isdigit():
            raise SearchError("_cursor: not a cursor this server gave out")
        where, params = _history_filter(type, id, since, int(cursor) if cursor else None)
        sql = (
            "SELECT seq, type, id, version, last_updated, body FROM resource_version"
            f"{where} ORDER BY seq DESC LIMIT ?"
        )
        rows = await self._file.scan(lambda db: db.execute(sql, (*params, count + 1)).fetchall())
        page = rows[:count]
        next_cursor = str(page[-1][0]) if len(rows) > count else None
        return SearchPage([version_row(*rest) for _, *rest in page], next_cursor)

    async def traced(self, correlation: str, limit: int) -> Sequence[StoredVersion]:
        sql = (
            "SELECT type, id, version, last_updated, body FROM resource_version "
            "WHERE correlation = ? ORDER BY seq LIMIT ?"
        )
        rows = await self._file.scan(lambda db: db.execute(sql, (correlation, limit)).fetchall())
        return [version_row(*row) for row in rows]

    # --- events: the version log from the relay's high-water mark ---
    async def pending_events(self, limit: int) -> Sequence[OutboxEvent]:
        def scan(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT seq, type, id, version, body, correlation FROM resource_version "
                "WHERE seq > (SELECT seq FROM relay_mark WHERE name = ?) ORDER BY seq LIMIT ?",
                (EVENTS_MARK, limit),
            ).fetchall()

        return [
            OutboxEvent(
                seq, _topic(type_, version, body), type_, id_, version, _bytes(body), correlation
            )
            for seq, type_, id_, version, body, correlation in await self._file.scan(scan)
        ]

    async def events_published(self, events: Sequence[OutboxEvent]) -> None:
        if not events:
            return
        last = max(int(event.seq) for event in events)
        await self._file.write(
            lambda db: db.execute(
                "UPDATE relay_mark SET seq = MAX(seq, ?) WHERE name = ?", (last, EVENTS_MARK)
            )
        )

    def committed(self) -> asyncio.Event:
        return self._committed


def _read_many(db: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> list[StoredVersion]:
    found: list[StoredVersion] = []
    for start in range(0, len(keys), 400):  # stay under SQLite's bound-parameter limit
        chunk = keys[start : start + 400]
        pairs = " OR ".join(["(c.type = ? AND c.id = ?)"] * len(chunk))
        rows = db.execute(
            "SELECT c.type, c.id, v.version, v.last_updated, v.body FROM resource_current c "
            f"JOIN resource_version v ON v.seq = c.seq WHERE ({pairs}) AND v.body IS NOT NULL",
            [part for key in chunk for part in key],
        ).fetchall()
        found.extend(version_row(*row) for row in rows)
    return found


@cache
def referring_params(target_type: str) -> tuple[tuple[str, str], ...]:
    """(type, parameter) of every stored reference parameter that may point to the type."""
    return tuple(
        (type_, param.code)
        for type_ in SUPPORTED_TYPES
        for param in stored_params(type_)
        if param.type == "reference" and (not param.targets or target_type in param.targets)
    )


def _topic(type_: str, version: int, body: Any) -> str:
    change = "deleted" if body is None else "created" if version == 1 else "updated"
    return f"fhir.{type_}.{change}"


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


def _history_filter(
    type: str | None, id: str | None, since: datetime | None, before_seq: int | None
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for clause, value in (
        ("type = ?", type),
        ("id = ?", id),
        ("last_updated >= ?", instant(since) if since else None),
        ("seq < ?", before_seq),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
