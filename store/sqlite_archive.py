"""The message archive in the embedded store (see ``store.archive``)."""

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.errors import StoreError
from hub.sqlite_commit import GroupCommit, durable
from store.archive import ArchivedMessage, ArchiveQuery, Claim, ClaimKind, filed_claim
from store.index import instant

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
    claimed_at TEXT NOT NULL DEFAULT ''
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
)
_COLUMNS = (
    "id, received_at, sender_application, sender_facility, peer, message_type, control_id, "
    "charset, raw, text, status, error, ack, attempts, resources, content_hash, duplicate_of, "
    "claimed_by, claimed_at"
)
_SAME_SENDER = (
    "sender_application = ? AND sender_facility = ? AND control_id = ? AND received_at >= ? "
    "AND status != 'rejected'"
)


class SqliteArchive:
    def __init__(self, db: sqlite3.Connection, read_db: sqlite3.Connection, group: GroupCommit):
        self._db, self._read, self._group = db, read_db, group
        db.executescript(SCHEMA)
        present = {row[1] for row in db.execute("PRAGMA table_info(hl7_message)")}
        for name, definition in _ADDED:
            if name not in present:
                db.execute(f"ALTER TABLE hl7_message ADD COLUMN {name} {definition}")

    async def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._group.unit() as committed:
            self._db.executemany(sql, rows)
        await durable(committed)

    async def add(self, message: ArchivedMessage) -> None:
        with self._group.unit() as committed:
            self._insert(message)
        await durable(committed)

    def _insert(self, message: ArchivedMessage) -> None:
        self._db.execute(
            f"INSERT INTO hl7_message ({_COLUMNS}) VALUES ({', '.join('?' * 19)})",
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
            ),
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO hl7_message_patient VALUES (?, ?)",
            [(patient, message.id) for patient in message.patient_ids],
        )

    async def claim(
        self, message: ArchivedMessage, since: datetime, refuse_reuse: bool = False
    ) -> Claim:
        # one unit on the write connection: the look-up sees every claim filed before it, even
        # one whose commit is still pending, and other processes wait for the file's lock
        with self._group.unit() as committed:
            key = (
                message.sender_application,
                message.sender_facility,
                message.control_id,
                instant(since),
            )
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM hl7_message WHERE {_SAME_SENDER} "
                "ORDER BY received_at DESC",
                key,
            ).fetchall()
            earlier = [self._message(row, patients=False) for row in rows]
            resent = next((m for m in earlier if m.content_hash == message.content_hash), None)
            if resent is not None:
                claim = Claim(ClaimKind.RESEND, resent)
            else:
                claim = filed_claim(message, earlier, refuse_reuse)
                self._insert(claim.message)
        await durable(committed)
        return claim

    async def take_over(
        self, id: str, claimant: str, stale_before: datetime
    ) -> ArchivedMessage | None:
        with self._group.unit() as committed:
            taken = self._db.execute(
                "UPDATE hl7_message SET claimed_by = ?, claimed_at = ? WHERE id = ? AND "
                "status = 'received' AND (claimed_by = ? OR claimed_at < ?)",
                (claimant, instant(datetime.now(UTC)), id, claimant, instant(stale_before)),
            ).rowcount
            row = self._db.execute(f"SELECT {_COLUMNS} FROM hl7_message WHERE id = ?", (id,))
            found = row.fetchone()
        await durable(committed)
        return self._message(found, patients=False) if taken and found else None

    async def stranded(self, stale_before: datetime, limit: int) -> Sequence[ArchivedMessage]:
        rows = self._read.execute(
            f"SELECT {_COLUMNS} FROM hl7_message WHERE status = 'received' AND claimed_at < ? "
            "ORDER BY received_at LIMIT ?",
            (instant(stale_before), limit),
        ).fetchall()
        return [self._message(row, patients=False) for row in rows]

    async def set_status(
        self,
        id: str,
        status: str,
        error: str = "",
        ack: str | None = None,
        resources: Sequence[str] = (),
    ) -> None:
        sets, args = ["status = ?", "error = ?"], [status, error]
        if ack is not None:
            sets.append("ack = ?")
            args.append(ack)
        if resources:
            sets.append("resources = ?")
            args.append(orjson.dumps(list(resources)).decode())
        # the normalizer's write, often from another process than the listener's: short
        with self._group.short() as committed:
            self._db.execute(f"UPDATE hl7_message SET {', '.join(sets)} WHERE id = ?", (*args, id))
        await durable(committed)

    async def mark_published(self, id: str, wait: bool = True) -> None:
        with self._group.unit() as committed:  # joins the next group commit
            self._db.execute(
                "UPDATE hl7_message SET status = 'published' WHERE id = ? AND status = 'received'",
                (id,),
            )
        if wait:
            await durable(committed)

    async def new_attempt(self, id: str, claimant: str) -> int:
        await self._write(
            "UPDATE hl7_message SET attempts = attempts + 1, status = 'received', error = '', "
            "claimed_by = ?, claimed_at = ? WHERE id = ?",
            [(claimant, instant(datetime.now(UTC)), id)],
        )
        return (await self.get(id)).attempts

    async def get(self, id: str) -> ArchivedMessage:
        row = self._read.execute(f"SELECT {_COLUMNS} FROM hl7_message WHERE id = ?", (id,))
        found = row.fetchone()
        if found is None:
            raise StoreError(f"no archived message {id}")
        return self._message(found)

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
        rows = self._read.execute(
            f"SELECT {_COLUMNS} FROM hl7_message WHERE {' AND '.join(where)} "
            "ORDER BY received_at LIMIT ?",
            (*args, query.limit),
        ).fetchall()
        return [self._message(row) for row in rows]

    async def purge(self, message_type: str, before: datetime) -> int:
        with self._group.unit() as committed:
            ids = [
                row[0]
                for row in self._db.execute(
                    "SELECT id FROM hl7_message WHERE message_type = ? AND received_at < ?",
                    (message_type, instant(before)),
                )
            ]
            self._db.executemany(
                "DELETE FROM hl7_message_patient WHERE message_id = ?", [(i,) for i in ids]
            )
            self._db.executemany("DELETE FROM hl7_message WHERE id = ?", [(i,) for i in ids])
        await durable(committed)
        return len(ids)

    def _message(self, row: Sequence[Any], patients: bool = True) -> ArchivedMessage:
        (id_, received, app, facility, peer, type_, control, charset, raw, text) = row[:10]
        status, error, ack, attempts, resources = row[10:15]
        content_hash, duplicate_of, claimed_by, claimed_at = row[15:]
        patient_ids = ()
        if patients:
            patient_ids = tuple(
                r[0]
                for r in self._read.execute(
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
        )


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
