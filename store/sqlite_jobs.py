"""Job leases and runs in the embedded store (see ``store.leases``), in the clinical file.

Several hub processes share the file, each with its own writer: a lease is taken in one
conditional statement, so the file's write lock decides between two processes that try at the
same moment."""

import sqlite3
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import orjson

from hub.base.progress import WorkProgress
from store.index import instant
from store.leases import HISTORY, JobRun
from store.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS job_lease (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,  -- '' when free
    expires TEXT NOT NULL  -- an instant (UTC text: sorts in time order)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_run (
    job TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    holder TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job, started)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS work_progress (
    work TEXT PRIMARY KEY,
    updated TEXT NOT NULL,  -- an instant
    body TEXT NOT NULL  -- the WorkProgress as JSON
) WITHOUT ROWID;
"""


class SqliteJobs:
    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    async def setup(self) -> None:
        await self._file.schema(SCHEMA)

    async def try_lease(self, job: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        # The upsert's UPDATE runs only WHERE the lease is free, expired or ours; the INSERT
        # creates a job's row the first time. rowcount is 0 when the lease is taken.
        sql = (
            "INSERT INTO job_lease (job, holder, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, "
            "expires = excluded.expires "
            "WHERE job_lease.holder IN ('', excluded.holder) OR job_lease.expires <= ?"
        )
        args = (job, holder, instant(now + ttl), instant(now))
        taken = await self._file.write(lambda db: db.execute(sql, args).rowcount)
        return bool(taken == 1)  # the lease is ours only once it is committed

    async def release(self, job: str, holder: str) -> None:
        sql = "UPDATE job_lease SET holder = '', expires = '' WHERE job = ? AND holder = ?"
        await self._file.write(lambda db: db.execute(sql, (job, holder)))

    async def last_run(self, job: str) -> datetime | None:
        # The read connection sees every committed run, another process's too (WAL).
        row = self._file.read.execute("SELECT max(started) FROM job_run WHERE job = ?", (job,))
        started = row.fetchone()[0]
        return _moment(started) if started is not None else None

    async def record_run(
        self,
        job: str,
        holder: str,
        started: datetime,
        finished: datetime,
        outcome: str,
        error: str = "",
    ) -> None:
        def record(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO job_run (job, started, finished, holder, outcome, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job, instant(started), instant(finished), holder, outcome, error),
            )
            db.execute(  # keep the latest HISTORY runs
                "DELETE FROM job_run WHERE job = ? AND started < (SELECT started FROM job_run "
                "WHERE job = ? ORDER BY started DESC LIMIT 1 OFFSET ?)",
                (job, job, HISTORY - 1),
            )

        await self._file.write(record)

    async def runs(self, job: str, limit: int = HISTORY) -> Sequence[JobRun]:
        rows = self._file.read.execute(
            "SELECT job, holder, started, finished, outcome, error FROM job_run WHERE job = ? "
            "ORDER BY started DESC LIMIT ?",
            (job, limit),
        ).fetchall()
        return [
            JobRun(job_, holder, _moment(started), _moment(finished), outcome, error)
            for job_, holder, started, finished, outcome, error in rows
        ]

    async def save_progress(self, progress: WorkProgress) -> None:
        sql = "INSERT OR REPLACE INTO work_progress (work, updated, body) VALUES (?, ?, ?)"
        args = (progress.work, instant(progress.updated), orjson.dumps(asdict(progress)))
        await self._file.write(lambda db: db.execute(sql, args))

    async def progress(self, work: str | None = None) -> Sequence[WorkProgress]:
        sql, args = "SELECT body FROM work_progress", tuple[str, ...]()
        if work is not None:
            sql, args = f"{sql} WHERE work = ?", (work,)
        rows = self._file.read.execute(f"{sql} ORDER BY updated DESC", args).fetchall()
        return [_progress(orjson.loads(body)) for (body,) in rows]


def _progress(fields: dict[str, object]) -> WorkProgress:
    for moment in ("started", "updated"):
        fields[moment] = _moment(str(fields[moment]))
    return WorkProgress(**fields)  # type: ignore[arg-type]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
