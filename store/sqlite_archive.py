"""The message archive in the embedded store (see ``store.archive``)."""

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.base.errors import StoreError
from store.archive import (
    KEPT_BY_PURGE,
    ArchivedMessage,
    ArchiveQuery,
    Claim,
    ClaimKind,
    filed_claim,
)
from store.index import instant
from store.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS hl7_message (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    sender_application TEXT NOT NULL,
    sender_facility TEXT NOT NULL,
    peer TEXT NOT NULL,
    message_type TEXT NOT NULL,
    control_id TEXT NOT NULL,
    charset TEXT NOT NULL,
    raw BLOB NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    ack TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 1,
    resources TEXT NOT NULL DEFAULT '[]',
    content_hash TEXT NOT NULL DEFAULT '',
    duplicate_of TEXT NOT NULL DEFAULT '',
    claimed_by TEXT NOT NULL DEFAULT '',
    claimed_at TEXT NOT NULL DEFAULT '',
    processings INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hl7_message_control
    ON hl7_message (sender_application, sender_facility, control_id, received_at);
CREATE INDEX IF NOT EXISTS hl7_message_type ON hl7_message (message_type, received_at);
CREATE INDEX IF NOT EXISTS hl7_message_status ON hl7_message (status, received_at);
CREATE TABLE IF NOT EXISTS hl7_message_patient (
    patient_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (patient_id, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hl7_message_patient_message ON hl7_message_patient (message_id);
"""
# columns added since the first schema: (name, definition) for archives made before them
_ADDED = (
    ("content_hash", "TEXT NOT NULL DEFAULT ''"),
    ("duplicate_of", "TEXT NOT NULL DEFAULT ''"),
    ("claimed_by", "TEXT NOT NULL DEFAULT ''"),
    ("claimed_at", "TEXT NOT NULL DEFAULT ''"),
    ("processings", "INTEGER NOT NULL DEFAULT 0"),
)
_COLUMNS = (
    "id, received_at, sender_application, sender_facility, peer, message_type, control_id, "
    "charset, raw, text, status, error, ack, attempts, resources, content_hash, duplicate_of, "
    "claimed_by, claimed_at, processings"
)
_SAME_SENDER = (
    "sender_application = ? AND sender_facility = ? AND control_id = ? AND received_at >= ? "
    "AND status != 'rejected'"
)


class SqliteArchive:
    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    async def setup(self) -> None:
        await self._file.schema(SCHEMA)
        await self._file.write(_add_columns)

    async def add(self, message: ArchivedMessage) -> None:
        await self._file.write(lambda db: _insert(db, message))

    async def claim(
        self, message: ArchivedMessage, since: datetime, refuse_reuse: bool = False
    ) -> Claim:
        def claim(db: sqlite3.Connection) -> Claim:
            # the writer's connection: the look-up sees every claim filed before it, in this
            # group too, and another process's writer waits for the file's lock meanwhile
            key = (
                message.sender_application,
                message.sender_facility,
                message.control_id,
                instant(since),
            )
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM hl7_message WHERE {_SAME_SENDER} "
                "ORDER BY received_at DESC",
                key,
            ).fetchall()
            earlier = [_message(row) for row in rows]
            resent = next((m for m in earlier if m.content_hash == message.content_hash), None)
            if resent is not None:
                return Claim(ClaimKind.RESEND, resent)
            filed = filed_claim(message, earlier, refuse_reuse)
            _insert(db, filed.message)
            return filed

        return await self._file.write(claim)

    async def take_over(
        self, id: str, claimant: str, stale_before: datetime
    ) -> ArchivedMessage | None:
        def take(db: sqlite3.Connection) -> ArchivedMessage | None:
            taken = db.execute(
                "UPDATE hl7_message SET claimed_by = ?, claimed_at = ? WHERE id = ? AND "
                "status = 'received' AND (claimed_by = ? OR claimed_at < ?)",
                (claimant, instant(datetime.now(UTC)), id, claimant, instant(stale_before)),
            ).rowcount
            row = db.execute(f"SELECT {_COLUMNS} FROM hl7_message WHERE id = ?", (id,)).fetchone()
            return _message(row) if taken and row else None

        return await self._file.write(take)

    async def stranded(self, stale_before: datetime, limit: int) -> Sequence[ArchivedMessage]:
        sql = (
            f"SELECT {_COLUMNS} FROM hl7_message WHERE status = 'received' AND claimed_at < ? "
            "ORDER BY received_at LIMIT ?"
        )
        args = (instant(stale_before), limit)
        return await self._file.scan(lambda db: [_message(r) for r in db.execute(sql, args)])

    async def set_status(
        self,
        id: str,
        status: str,
        error: str = "",
        ack: str | None = None,
        resources: Sequence[str] = (),
        processed: bool = False,
    ) -> None:
        sets, args = ["status = ?", "error = ?"], [status, error]
        if processed:
            sets.append("processings = processings + 1")
        if ack is not None:
            sets.append("ack = ?")
            args.append(ack)
        if resources:
            sets.append("resources = ?")
            args.append(orjson.dumps(list(resources)).decode())
        sql = f"UPDATE hl7_message SET {', '.join(sets)} WHERE id = ?"
        await self._file.write(lambda db: db.execute(sql, (*args, id)))

    async def mark_published(self, id: str, wait: bool = True) -> None:
        def mark(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE hl7_message SET status = 'published' WHERE id = ? AND status = 'received'",
                (id,),
            )

        if wait:
            await self._file.write(mark)
        else:
            self._file.writer.submit(mark)

    async def new_attempt(self, id: str, claimant: str) -> int:
        def attempt(db: sqlite3.Connection) -> int:
            db.execute(
                "UPDATE hl7_message SET attempts = attempts + 1, status = 'received', "
                "error = '', claimed_by = ?, claimed_at = ? WHERE id = ?",
                (claimant, instant(datetime.now(UTC)), id),
            )
            row = db.execute("SELECT attempts FROM hl7_message WHERE id = ?", (id,)).fetchone()
            if row is None:
                raise StoreError(f"no archived message {id}")
            return int(row[0])

        return await self._file.write(attempt)

    async def get(self, id: str) -> ArchivedMessage:
        db = self._file.read
        found = db.execute(f"SELECT {_COLUMNS} FROM hl7_message WHERE id = ?", (id,)).fetchone()
        if found is None:
            raise StoreError(f"no archived message {id}")
        return _message(found, db)

    async def search(self, query: ArchiveQuery) -> Sequence[ArchivedMessage]:
        where, args = ["1"], []
        for column, value in (
            ("sender_application", query.sender_application),
            ("message_type", query.message_type),
            ("status", query.status),
            ("control_id", query.control_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.statuses:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            args.extend(query.statuses)
        if query.received_from is not None:
            where.append("received_at >= ?")
            args.append(instant(query.received_from))
        if query.received_to is not None:
            where.append("received_at < ?")
            args.append(instant(query.received_to))
        if query.patient_id is not None:
            where.append("id IN (SELECT message_id FROM hl7_message_patient WHERE patient_id = ?)")
            args.append(query.patient_id)
        sql = (
            f"SELECT {_COLUMNS} FROM hl7_message WHERE {' AND '.join(where)} "
            "ORDER BY received_at LIMIT ?"
        )

        def scan(db: sqlite3.Connection) -> list[ArchivedMessage]:
            return [_message(row, db) for row in db.execute(sql, (*args, query.limit))]

        return await self._file.scan(scan)

    async def purge(self, message_type: str, before: datetime) -> int:
        def purge(db: sqlite3.Connection) -> int:
            ids = [
                (row[0],)
                for row in db.execute(
                    "SELECT id FROM hl7_message WHERE message_type = ? AND received_at < ? "
                    f"AND status NOT IN ({', '.join('?' * len(KEPT_BY_PURGE))})",
                    (message_type, instant(before), *KEPT_BY_PURGE),
                )
            ]
            db.executemany("DELETE FROM hl7_message_patient WHERE message_id = ?", ids)
            db.executemany("DELETE FROM hl7_message WHERE id = ?", ids)
            return len(ids)

        return await self._file.write(purge)


def _add_columns(db: sqlite3.Connection) -> None:
    present = {row[1] for row in db.execute("PRAGMA table_info(hl7_message)")}
    for name, definition in _ADDED:
        if name not in present:
            db.execute(f"ALTER TABLE hl7_message ADD COLUMN {name} {definition}")


def _insert(db: sqlite3.Connection, message: ArchivedMessage) -> None:
    db.execute(
        f"INSERT INTO hl7_message ({_COLUMNS}) VALUES ({', '.join('?' * 20)})",
        (
            message.id,
            instant(message.received_at),
            message.sender_application,
            message.sender_facility,
            message.peer,
            message.message_type,
            message.control_id,
            message.charset,
            message.raw,
            message.text,
            message.status,
            message.error,
            message.ack,
            message.attempts,
            orjson.dumps(list(message.resources)).decode(),
            message.content_hash,
            message.duplicate_of,
            message.claimed_by,
            instant(message.claimed_at) if message.claimed_at else "",
            message.processings,
        ),
    )
    db.executemany(
        "INSERT OR IGNORE INTO hl7_message_patient VALUES (?, ?)",
        [(patient, message.id) for patient in message.patient_ids],
    )


def _message(row: Sequence[Any], db: sqlite3.Connection | None = None) -> ArchivedMessage:
    """One archived message; its patient identifiers are read only when ``db`` is given."""
    (id_, received, app, facility, peer, type_, control, charset, raw, text) = row[:10]
    status, error, ack, attempts, resources = row[10:15]
    content_hash, duplicate_of, claimed_by, claimed_at, processings = row[15:]
    patient_ids: tuple[str, ...] = ()
    if db is not None:
        patient_ids = tuple(
            r[0]
            for r in db.execute(
                "SELECT patient_id FROM hl7_message_patient WHERE message_id = ?", (id_,)
            )
        )
    return ArchivedMessage(
        id=id_,
        received_at=_moment(received),
        sender_application=app,
        sender_facility=facility,
        peer=peer,
        message_type=type_,
        control_id=control,
        charset=charset,
        raw=bytes(raw),
        text=text,
        status=status,
        error=error,
        ack=ack,
        attempts=attempts,
        patient_ids=patient_ids,
        resources=tuple(orjson.loads(resources)),
        content_hash=content_hash,
        duplicate_of=duplicate_of,
        claimed_by=claimed_by,
        claimed_at=_moment(claimed_at) if claimed_at else None,
        processings=processings,
    )


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
