"""The audit log of the embedded store: AuditEvents appended in batches to one lean table.

An audit record is written for every API call, reads included, so it must cost a small
fraction of the call: one row with the few columns searches use, no versions, no generic
index rows, no events. Records are immutable (no update, no delete). Searchable through the
FHIR API as AuditEvent by ``_id``, ``date``, ``agent-name``, ``entity``, ``subtype``,
``action`` and ``outcome``.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub.base.envelope import new_id
from hub.base.errors import ResourceNotFoundError, SearchError
from store.audit_columns import columns_of
from store.index import instant
from store.resources import AuditFilter, Resource, SearchPage, StoredVersion
from store.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    recorded TEXT NOT NULL,
    agent TEXT,
    entity TEXT,
    subtype TEXT,
    action TEXT,
    outcome TEXT,
    body BLOB NOT NULL,
    correlation TEXT                -- the request's correlation id (its X-Request-Id entity)
);
CREATE INDEX IF NOT EXISTS audit_event_recorded ON audit_event (recorded);
CREATE INDEX IF NOT EXISTS audit_event_agent ON audit_event (agent, recorded);
CREATE INDEX IF NOT EXISTS audit_event_entity ON audit_event (entity, recorded);
"""
_COLUMNS = {"_id": "id", "date": "recorded", "agent-name": "agent", "entity": "entity"}
_COLUMNS |= {"correlation": "correlation"}  # for ``jianhu trace``; not a FHIR search parameter
_COLUMNS |= {"subtype": "subtype", "action": "action", "outcome": "outcome"}
_OPS = {"=", ">=", "<=", ">", "<"}


def _condition(item: AuditFilter) -> str:
    if item.param not in _COLUMNS or item.op not in _OPS:
        raise SearchError(f"the audit log cannot be searched by {item.param} {item.op}")
    return f"{_COLUMNS[item.param]} {item.op} ?"


def _add_correlation(db: Any) -> None:
    """Logs made before events kept their request's correlation id get the column (empty)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(audit_event)")}
    if "correlation" not in columns:
        db.execute("ALTER TABLE audit_event ADD COLUMN correlation TEXT")
    db.execute(
        "CREATE INDEX IF NOT EXISTS audit_event_correlation ON audit_event (correlation) "
        "WHERE correlation IS NOT NULL"
    )


class SqliteAuditLog:
    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    async def setup(self) -> None:
        await self._file.schema(SCHEMA)
        await self._file.write(_add_correlation)

    async def append(self, events: Sequence[Resource]) -> list[Resource]:
        """One write of the writer thread; returns the events with their ids and meta."""
        stored = []
        now = instant(datetime.now(UTC))
        for event in events:
            meta = {"versionId": "1", "lastUpdated": now}
            stored.append({**event, "id": event.get("id") or new_id(), "meta": meta})
        rows = [columns_of(event) for event in stored]
        await self._file.write(
            lambda db: db.executemany(
                "INSERT INTO audit_event "
                "(id, recorded, agent, entity, subtype, action, outcome, correlation, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        )
        return stored

    async def read(self, id: str) -> StoredVersion:
        row = self._file.read.execute(
            "SELECT recorded, body FROM audit_event WHERE id = ?", (id,)
        ).fetchone()
        if row is None:
            raise ResourceNotFoundError(f"AuditEvent/{id} does not exist")
        return _version(id, row[0], row[1])

    async def search(
        self, filters: Sequence[AuditFilter], count: int, cursor: str | None, newest_first: bool
    ) -> SearchPage:
        where, args = ["1"], []
        for item in filters:
            where.append(_condition(item))
            args.append(item.value)
        if cursor is not None:
            if not cursor.isdigit():
                raise SearchError("_cursor: not a cursor this server gave out")
            where.append("seq < ?" if newest_first else "seq > ?")
            args.append(cursor)
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT seq, id, recorded, body FROM audit_event WHERE {' AND '.join(where)} "
            f"ORDER BY seq {order} LIMIT ?"
        )
        rows = await self._file.scan(lambda db: db.execute(sql, (*args, count + 1)).fetchall())
        page = rows[:count]
        next_cursor = str(page[-1][0]) if len(rows) > count else None
        return SearchPage([_version(id_, at, body) for _, id_, at, body in page], next_cursor)

    async def count(self, filters: Sequence[AuditFilter]) -> int:
        where = " AND ".join(["1", *(_condition(f) for f in filters)])
        sql = f"SELECT COUNT(*) FROM audit_event WHERE {where}"
        values = [f.value for f in filters]
        (total,) = await self._file.scan(lambda db: db.execute(sql, values).fetchone())
        return int(total)


def _version(id: str, recorded: str, body: bytes) -> StoredVersion:
    moment = datetime.fromisoformat(recorded.replace("Z", "+00:00")).astimezone(UTC)
    return StoredVersion("AuditEvent", id, 1, moment, bytes(body))
