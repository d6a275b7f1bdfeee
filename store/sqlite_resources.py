"""Versioned FHIR resources in SQLite: every version in ``resource_version``, the current one
pointed at from ``resource_current``. One write is one transaction."""

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.envelope import new_id
from hub.errors import (
    ResourceGoneError,
    ResourceNotFoundError,
    SearchError,
    VersionConflictError,
)
from hub.sqlite_commit import durable
from store.index import extract, instant
from store.query import SearchQuery
from store.resources import OutboxEvent, Resource, SearchPage, StoredVersion, WriteResult
from store.sqlite_audit import SqliteAuditLog
from store.sqlite_file import SqliteFile
from store.sqlite_index import drop_index, schema, write_index
from store.sqlite_search import after_clause, compile_query, order_clause, sort_exprs

SCHEMA = """
CREATE TABLE IF NOT EXISTS resource_version (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,       -- commit order: history paging cursor
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    body BLOB,                                  -- NULL: this version is a deletion
    UNIQUE (type, id, version)
);
CREATE INDEX IF NOT EXISTS ix_resource_version_type ON resource_version (type, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,       -- publish order
    topic TEXT NOT NULL,                         -- fhir.<Type>.<created|updated|deleted>
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS resource_current (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;
"""


def _with_meta(resource: Resource, id: str, version: int, last_updated: str) -> Resource:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = last_updated
    return {**resource, "id": id, "meta": meta}


def _row(type: str, id: str, version: int, last_updated: str, body: Any) -> StoredVersion:
    moment = datetime.fromisoformat(last_updated.replace("Z", "+00:00"))
    return StoredVersion(type, id, version, moment, bytes(body) if body is not None else None)


class SqliteResources:
    """The ``ResourceStore`` of the embedded store, on a connection the store owns."""

    def __init__(self, file: SqliteFile) -> None:
        """``file.db`` takes every write (group-committed); ``file.read`` serves reads and sees
        only committed data."""
        self._db, self._read = file.db, file.read
        self._in_transaction = False
        self._transaction_lock = asyncio.Lock()
        self._committed = asyncio.Event()
        self._group = file.group
        file.on_commit(self._committed.set)
        self._db.executescript(SCHEMA + schema())
        self._audit = SqliteAuditLog(self._db, self._read)

    @contextmanager
    def _tx(self) -> Iterator[asyncio.Future[None] | None]:
        """A write unit; the caller awaits the yielded commit (None inside a transaction,
        which commits as a whole)."""
        if self._in_transaction:
            yield None
            return
        with self._group.unit() as committed:
            yield committed

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Every write inside commits together or not at all. The body must not wait on
        anything but this store (whose calls here never suspend), so no other writer's
        statements can land inside it; the lock keeps other transactions out."""
        async with self._transaction_lock:
            with self._group.unit() as committed:
                self._in_transaction = True
                try:
                    yield
                finally:
                    self._in_transaction = False
        # outside the lock: the next transaction joins the same group and shares its COMMIT
        await durable(committed)

    def _current(self, type: str, id: str) -> tuple[int, bool] | None:
        """(version, deleted) of the current version, or None when there never was one."""
        row = self._db.execute(
            "SELECT c.version, v.body IS NULL FROM resource_current c "
            "JOIN resource_version v ON v.seq = c.seq WHERE c.type=? AND c.id=?",
            (type, id),
        ).fetchone()
        return (row[0], bool(row[1])) if row else None

    def _write(self, type: str, id: str, body: Resource | None, version: int) -> StoredVersion:
        last_updated = instant(datetime.now(UTC))
        stored = _with_meta(body, id, version, last_updated) if body is not None else None
        raw = orjson.dumps(stored) if stored is not None else None
        seq = self._db.execute(
            "INSERT INTO resource_version (type, id, version, last_updated, body) "
            "VALUES (?, ?, ?, ?, ?)",
            (type, id, version, last_updated, raw),
        ).lastrowid
        self._db.execute(
            "INSERT INTO resource_current (type, id, version, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (type, id) DO UPDATE SET version=excluded.version, seq=excluded.seq",
            (type, id, version, seq),
        )
        if stored is None:
            drop_index(self._db, type, id)
        else:  # a first version has no index rows to replace
            write_index(self._db, type, id, extract(stored), replace=version > 1)
        change = "deleted" if stored is None else "created" if version == 1 else "updated"
        self._db.execute(
            "INSERT INTO outbox (topic, type, id, version) VALUES (?, ?, ?, ?)",
            (f"fhir.{type}.{change}", type, id, version),
        )
        return _row(type, id, version, last_updated, raw)

    async def create(self, resource: Resource, id: str | None = None) -> StoredVersion:
        with self._tx() as committed:
            stored = self._write(resource["resourceType"], id or new_id(), resource, 1)
        await durable(committed)
        return stored

    @property
    def audit(self) -> SqliteAuditLog:
        return self._audit

    async def append_audit(self, events: Sequence[Resource]) -> list[Resource]:
        with self._tx() as committed:
            stored = self._audit.insert(events)
        await durable(committed)
        return stored

    async def update(self, resource: Resource, if_match: int | None = None) -> WriteResult:
        type, id = resource["resourceType"], resource["id"]
        with self._tx() as committed:
            current = self._current(type, id)
            version = current[0] if current else 0
            if if_match is not None and if_match != version:
                raise VersionConflictError(f"{type}/{id} is at version {version}, not {if_match}")
            stored = self._write(type, id, resource, version + 1)
        await durable(committed)
        return WriteResult(stored, created=current is None or current[1])

    async def delete(self, type: str, id: str, if_match: int | None = None) -> StoredVersion | None:
        with self._tx() as committed:
            current = self._current(type, id)
            if current is None or current[1]:
                return None  # nothing to delete: FHIR makes a repeated delete a success
            if if_match is not None and if_match != current[0]:
                raise VersionConflictError(
                    f"{type}/{id} is at version {current[0]}, not {if_match}"
                )
            stored = self._write(type, id, None, current[0] + 1)
        await durable(committed)
        return stored

    async def read(self, type: str, id: str) -> StoredVersion:
        row = self._read.execute(
            "SELECT v.version, v.last_updated, v.body FROM resource_current c "
            "JOIN resource_version v ON v.seq = c.seq WHERE c.type=? AND c.id=?",
            (type, id),
        ).fetchone()
        if row is None:
            raise ResourceNotFoundError(f"{type}/{id} does not exist")
        if row[2] is None:
            raise ResourceGoneError(f"{type}/{id} was deleted (version {row[0]})")
        return _row(type, id, *row)

    async def vread(self, type: str, id: str, version: int) -> StoredVersion:
        row = self._read.execute(
            "SELECT last_updated, body FROM resource_version WHERE type=? AND id=? AND version=?",
            (type, id, version),
        ).fetchone()
        if row is None:
            raise ResourceNotFoundError(f"{type}/{id} has no version {version}")
        if row[1] is None:
            raise ResourceGoneError(f"{type}/{id} version {version} is a deletion")
        return _row(type, id, version, *row)

    async def read_many(self, keys: Sequence[tuple[str, str]]) -> Sequence[StoredVersion]:
        found: list[StoredVersion] = []
        for start in range(0, len(keys), 400):  # stay under SQLite's bound-parameter limit
            chunk = keys[start : start + 400]
            pairs = " OR ".join(["(c.type = ? AND c.id = ?)"] * len(chunk))
            rows = self._read.execute(
                "SELECT c.type, c.id, v.version, v.last_updated, v.body FROM resource_current c "
                f"JOIN resource_version v ON v.seq = c.seq WHERE ({pairs}) AND v.body IS NOT NULL",
                [part for key in chunk for part in key],
            ).fetchall()
            found.extend(_row(*row) for row in rows)
        return found

    async def referencing(self, target: str, limit: int) -> Sequence[StoredVersion]:
        rows = self._read.execute(
            "SELECT DISTINCT type, id FROM ix_reference WHERE target = ? LIMIT ?", (target, limit)
        ).fetchall()
        return await self.read_many([(type_, id_) for type_, id_ in rows])

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
        rows = self._read.execute(
            f"SELECT c.type, c.id, v.version, v.last_updated, v.body, {keys} "
            "FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
            f"WHERE {where} AND v.body IS NOT NULL ORDER BY {order} LIMIT ?",
            (*key_args, *params, *order_args, count + 1),
        ).fetchall()
        page = rows[:count]
        next_cursor = encode_cursor(list(page[-1][5:])) if len(rows) > count else None
        return SearchPage([_row(*row[:5]) for row in page], next_cursor)

    async def count(self, query: SearchQuery) -> int:
        where, params = compile_query(query)
        (total,) = self._read.execute(
            "SELECT COUNT(*) FROM resource_current c JOIN resource_version v ON v.seq = c.seq "
            f"WHERE {where} AND v.body IS NOT NULL",
            params,
        ).fetchone()
        return int(total)

    async def pending_events(self, limit: int) -> Sequence[OutboxEvent]:
        rows = self._read.execute(
            "SELECT o.seq, o.topic, o.type, o.id, o.version, v.body FROM outbox o "
            "JOIN resource_version v ON v.type = o.type AND v.id = o.id AND v.version = o.version "
            "ORDER BY o.seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            OutboxEvent(seq, topic, type_, id_, version, bytes(body) if body is not None else None)
            for seq, topic, type_, id_, version, body in rows
        ]

    async def events_published(self, events: Sequence[OutboxEvent]) -> None:
        with self._tx() as committed:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(e.seq,) for e in events])
        await durable(committed)

    def committed(self) -> asyncio.Event:
        return self._committed

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
        rows = self._read.execute(
            "SELECT seq, type, id, version, last_updated, body FROM resource_version"
            f"{where} ORDER BY seq DESC LIMIT ?",
            (*params, count + 1),
        ).fetchall()
        page = rows[:count]
        next_cursor = str(page[-1][0]) if len(rows) > count else None
        return SearchPage([_row(*rest) for _, *rest in page], next_cursor)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise SearchError("_cursor: not a cursor this server gave out") from exc
    if not isinstance(values, list) or len(values) != length:
        raise SearchError("_cursor: it belongs to a search with another sort order")
    return values


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
