"""The delivery ledger in the embedded store (see ``store.ledger``)."""

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub.base.errors import StoreError
from store.index import instant
from store.ledger import SENDING, Attempt, LedgerQuery, Submission
from store.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_submission (
    id TEXT PRIMARY KEY,
    adapter TEXT NOT NULL,
    interface TEXT NOT NULL,
    business_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    next_attempt_at TEXT,
    error TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL DEFAULT '',
    cancels TEXT NOT NULL DEFAULT '',
    replaces TEXT NOT NULL DEFAULT '',
    correlations TEXT NOT NULL DEFAULT ''        -- space-separated; looked up through the next
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_by_key
    ON ledger_submission (adapter, interface, business_key, kind, created_at);
CREATE INDEX IF NOT EXISTS ledger_by_status ON ledger_submission (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS ledger_by_time ON ledger_submission (created_at);
CREATE TABLE IF NOT EXISTS ledger_attempt (
    submission_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (submission_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_correlation (
    correlation TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    PRIMARY KEY (correlation, submission_id)
) WITHOUT ROWID;
"""
_COLUMNS = (
    "id, adapter, interface, business_key, kind, payload, content_hash, status, created_at, "
    "updated_at, next_attempt_at, error, external_id, cancels, replaces, correlations"
)


def _add_correlations(db: sqlite3.Connection) -> None:
    """Ledgers made before submissions kept their correlation ids get the column (empty)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(ledger_submission)")}
    if "correlations" not in columns:
        db.execute("ALTER TABLE ledger_submission ADD COLUMN correlations TEXT NOT NULL DEFAULT ''")


class SqliteLedger:
    def __init__(self, file: SqliteFile) -> None:
        """Writes go to the file's writer; a write is committed before its call returns, so
        the reads after it (on the loop, or in a reader thread) see it."""
        self._file = file

    async def setup(self) -> None:
        await self._file.schema(SCHEMA)
        await self._file.write(_add_correlations)

    async def add(self, submission: Submission) -> None:
        s = submission
        row = (
            s.id,
            s.adapter,
            s.interface,
            s.business_key,
            s.kind,
            s.payload,
            s.content_hash,
            s.status,
            instant(s.created_at),
            instant(s.updated_at),
            instant(s.next_attempt_at) if s.next_attempt_at else None,
            s.error,
            s.external_id,
            s.cancels,
            s.replaces,
        )
        sql = f"INSERT INTO ledger_submission ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"
        links = [(correlation, s.id) for correlation in s.correlations]

        def add(db: sqlite3.Connection) -> None:
            db.execute(sql, (*row, " ".join(s.correlations)))
            db.executemany("INSERT OR IGNORE INTO ledger_correlation VALUES (?, ?)", links)

        await self._file.write(add)

    async def get(self, id: str) -> Submission:
        found = _select(self._file.read, "WHERE id = ?", [id], 1)
        if not found:
            raise StoreError(f"no submission {id}")
        return found[0]

    async def latest(
        self, adapter: str, interface: str, business_key: str, kind: str = "upload"
    ) -> Submission | None:
        found = _select(
            self._file.read,
            "WHERE adapter = ? AND interface = ? AND business_key = ? AND kind = ? "
            "ORDER BY created_at DESC, id DESC",
            [adapter, interface, business_key, kind],
            1,
        )
        return found[0] if found else None

    async def search(self, query: LedgerQuery) -> Sequence[Submission]:
        clauses, args = [], []
        for column, value in (
            ("adapter = ?", query.adapter),
            ("interface = ?", query.interface),
            ("business_key = ?", query.business_key),
            ("created_at >= ?", instant(query.created_from) if query.created_from else None),
            ("created_at < ?", instant(query.created_to) if query.created_to else None),
        ):
            if value is not None:
                clauses.append(column)
                args.append(value)
        if query.statuses:
            clauses.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            args.extend(query.statuses)
        if query.correlation is not None:
            clauses.append(
                "id IN (SELECT submission_id FROM ledger_correlation WHERE correlation = ?)"
            )
            args.append(query.correlation)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        tail = f"{where}ORDER BY created_at DESC"
        return await self._file.scan(lambda db: _select(db, tail, args, query.limit))

    async def claim(self, id: str, expected: Sequence[str], now: datetime) -> Submission | None:
        marks = ", ".join("?" * len(expected))
        sql = (
            f"UPDATE ledger_submission SET status = ?, updated_at = ? "
            f"WHERE id = ? AND status IN ({marks})"
        )
        args = (SENDING, instant(now), id, *expected)
        changed = await self._file.write(lambda db: db.execute(sql, args).rowcount)
        return await self.get(id) if changed else None

    async def finish(
        self,
        id: str,
        attempt: Attempt,
        status: str,
        next_attempt_at: datetime | None = None,
        external_id: str = "",
    ) -> Submission:
        def finish(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO ledger_attempt VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    id,
                    attempt.number,
                    instant(attempt.started_at),
                    instant(attempt.finished_at),
                    attempt.outcome,
                    attempt.request,
                    attempt.response,
                    attempt.error,
                ),
            )
            db.execute(
                "UPDATE ledger_submission SET status = ?, updated_at = ?, next_attempt_at = ?, "
                "error = ?, external_id = CASE WHEN ? != '' THEN ? ELSE external_id END "
                "WHERE id = ?",
                (
                    status,
                    instant(attempt.finished_at),
                    instant(next_attempt_at) if next_attempt_at else None,
                    attempt.error,
                    external_id,
                    external_id,
                    id,
                ),
            )

        await self._file.write(finish)
        return await self.get(id)

    async def set_status(self, id: str, status: str, error: str = "") -> Submission:
        sql = (
            "UPDATE ledger_submission SET status = ?, error = ?, updated_at = ?, "
            "next_attempt_at = NULL WHERE id = ?"
        )
        args = (status, error, instant(datetime.now(UTC)), id)
        changed = await self._file.write(lambda db: db.execute(sql, args).rowcount)
        if not changed:
            raise StoreError(f"no submission {id}")
        return await self.get(id)

    async def due(
        self, now: datetime, limit: int, adapters: Sequence[str] | None = None
    ) -> Sequence[Submission]:
        only, args = "", [instant(now)]
        if adapters is not None:
            only = f"AND adapter IN ({', '.join('?' * len(adapters))}) " if adapters else "AND 0 "
            args += list(adapters)
        tail = (
            "WHERE (status = 'pending' OR (status = 'failed' AND next_attempt_at <= ?)) "
            f"{only}ORDER BY created_at"
        )
        return await self._file.scan(lambda db: _select(db, tail, args, limit))


def _select(db: sqlite3.Connection, tail: str, args: Sequence[Any], limit: int) -> list[Submission]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM ledger_submission {tail} LIMIT ?", (*args, limit)
    ).fetchall()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    attempts: dict[str, list[Attempt]] = {id_: [] for id_ in ids}
    for row in db.execute(
        "SELECT submission_id, number, started_at, finished_at, outcome, request, response, "
        f"error FROM ledger_attempt WHERE submission_id IN ({', '.join('?' * len(ids))}) "
        "ORDER BY submission_id, number",
        ids,
    ):
        attempts[row[0]].append(
            Attempt(row[1], _time(row[2]), _time(row[3]), row[4], row[5], row[6], row[7])
        )
    return [_submission(row, tuple(attempts[row[0]])) for row in rows]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _submission(row: Sequence[Any], attempts: tuple[Attempt, ...]) -> Submission:
    return Submission(
        id=row[0],
        adapter=row[1],
        interface=row[2],
        business_key=row[3],
        kind=row[4],
        payload=row[5],
        content_hash=row[6],
        status=row[7],
        created_at=_time(row[8]),
        updated_at=_time(row[9]),
        next_attempt_at=_time(row[10]) if row[10] else None,
        error=row[11],
        external_id=row[12],
        cancels=row[13],
        replaces=row[14],
        correlations=tuple(row[15].split()),
        attempts=attempts,
    )
