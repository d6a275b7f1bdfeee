"""The SQLite writer thread: jobs run off the event loop, grouped into commits, each in a
savepoint of its own; the loop's connections cannot write at all."""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.base.errors import StoreError
from hub.base.sqlite_writer import SqliteReaders, SqliteWriter, connect_reader


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteWriter]:
    writer = SqliteWriter(tmp_path / "w.sqlite3")
    writer.start()
    await writer.run_alone(lambda db: db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INT)"))
    yield writer
    await writer.close()


def rows(path: Path) -> dict[str, int]:
    db = connect_reader(path)
    try:
        return dict(db.execute("SELECT k, n FROM t").fetchall())
    finally:
        db.close()


async def test_jobs_run_in_the_writer_thread_and_are_committed_before_they_return(
    writer: SqliteWriter,
) -> None:
    def insert(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO t VALUES ('a', 1)")
        return threading.get_ident()

    ran_in = await writer.run(insert)
    assert ran_in != threading.get_ident()
    assert rows(writer.path) == {"a": 1}  # another connection sees it: committed


async def test_jobs_of_one_group_see_each_other_and_a_failure_rolls_back_only_itself(
    writer: SqliteWriter,
) -> None:
    def bump(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES ('c', 1) ON CONFLICT (k) DO UPDATE SET n = n + 1")

    def broken(db: sqlite3.Connection) -> None:
        bump(db)
        raise ValueError("this job fails after its write")

    results = await asyncio.gather(
        *(writer.run(broken if n == 3 else bump) for n in range(8)), return_exceptions=True
    )
    assert [type(r).__name__ for r in results].count("ValueError") == 1
    assert rows(writer.path) == {"c": 7}  # seven counted, the failing one's write undone


async def test_the_loops_connections_cannot_write(tmp_path: Path, writer: SqliteWriter) -> None:
    reader = connect_reader(writer.path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t VALUES ('x', 1)")
    finally:
        reader.close()
    readers = SqliteReaders(writer.path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await readers.run(lambda db: db.execute("DELETE FROM t"))
        assert await readers.run(lambda db: db.execute("SELECT count(*) FROM t").fetchone()) == (0,)
    finally:
        await readers.close()


async def test_a_discarding_close_commits_nothing_more(tmp_path: Path) -> None:
    """As a crash would: what is queued is refused to its callers, nothing is committed."""
    path = tmp_path / "d.sqlite3"
    writer = SqliteWriter(path)
    writer.start()
    await writer.run_alone(lambda db: db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INT)"))
    release = threading.Event()

    def slow(db: sqlite3.Connection) -> None:
        release.wait(5)
        db.execute("INSERT INTO t VALUES ('slow', 1)")

    first = asyncio.ensure_future(writer.run(slow))
    queued = asyncio.ensure_future(
        writer.run(lambda db: db.execute("INSERT INTO t VALUES ('q', 1)"))
    )
    await asyncio.sleep(0)  # both are in the writer's queue (the first one running)
    closing = asyncio.ensure_future(writer.close(discard=True))
    await asyncio.sleep(0)  # the close has begun (told the writer to discard) before the job ends
    release.set()
    await closing
    for job in (first, queued):
        with pytest.raises(StoreError):
            await job
    assert rows(path) == {}


async def test_a_quick_read_stays_on_the_loop_and_a_long_one_goes_to_a_reader(
    tmp_path: Path,
) -> None:
    """``SqliteFile.scan`` tries a read on the loop's connection within a budget of SQLite
    steps; past it the read is interrupted and run again, whole, in a reader thread."""
    from store.sqlite_file import SqliteFile

    file = SqliteFile(tmp_path / "s.sqlite3")
    await file.open()
    try:
        await file.schema("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        await file.write(
            lambda db: db.executemany(
                "INSERT INTO t VALUES (?, ?)", [(n, f"v{n}") for n in range(50_000)]
            )
        )

        def where(sql: str) -> Callable[[sqlite3.Connection], tuple[int, Any]]:
            return lambda db: (threading.get_ident(), db.execute(sql).fetchall())

        loop_thread = threading.get_ident()
        ran_in, found = await file.scan(where("SELECT v FROM t WHERE k = 7"))
        assert (ran_in, found) == (loop_thread, [("v7",)])
        ran_in, found = await file.scan(where("SELECT count(*) FROM t WHERE v LIKE '%9%'"))
        assert ran_in != loop_thread
        assert found == [(sum("9" in f"v{n}" for n in range(50_000)),)]
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await file.scan(where("SELECT * FROM missing"))
    finally:
        await file.close()
