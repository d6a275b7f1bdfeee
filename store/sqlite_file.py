"""One SQLite database file of the embedded store: its writer thread (every write, grouped into
commits), its reader threads (reads that take a while), a read connection for point reads on
the event loop (WAL: it never waits, and sees only committed data), and the checkpointing that
keeps the WAL short.

The clinical store and the message archive live in two files, each with its own writer and
write lock: an intake process that only archives messages and a normalizer process that writes
resources never wait for each other's transactions."""

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hub.base.errors import StoreError
from hub.base.sqlite_writer import Job, SqliteReaders, SqliteWriter, connect_reader, detached
from store.sqlite_checkpoint import Checkpointer

T = TypeVar("T")
# A read on the loop may run QUICK_BUDGET x QUICK_STEPS of SQLite's virtual machine steps
# (about 4,000 a millisecond here) before it is handed to a reader thread.
QUICK_STEPS = 1_000
QUICK_BUDGET = 10


class SqliteFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = SqliteWriter(path)
        self.readers = SqliteReaders(path)
        self._read: sqlite3.Connection | None = None
        self._checkpointer = Checkpointer(path)

    async def open(self) -> None:
        self.writer.start()  # first: it sets the file to WAL before anyone reads
        try:
            self._read = connect_reader(self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        self._checkpointer.start()

    @property
    def read(self) -> sqlite3.Connection:
        """The loop's own read connection: point reads (one row by key) only."""
        if self._read is None:
            raise StoreError("the store is not open")
        return self._read

    async def write(self, job: Job[T], durable: bool = True) -> T:
        return await self.writer.run(job, durable)

    async def schema(self, script: str) -> None:
        await self.writer.run_alone(lambda db: db.executescript(script))

    async def scan(self, job: Job[T]) -> T:
        """A read that may take a while: tried first on the loop's read connection within a
        budget of SQLite steps (about 2 ms), which a page found through an index fits; past
        the budget SQLite interrupts it and it runs again in a reader thread. Handing every
        read to a thread cost more than the read itself: identifier searches at 32 clients
        fell from 1,369 to 787 a second."""
        spent = [0]

        def on_steps() -> int:
            spent[0] += 1
            return 1 if spent[0] > QUICK_BUDGET else 0  # non-zero interrupts the statement

        db = self.read
        db.set_progress_handler(on_steps, QUICK_STEPS)
        try:
            result: T = detached(job(db))
            return result
        except sqlite3.OperationalError:
            if spent[0] <= QUICK_BUDGET:
                raise  # a real error, not the budget
        finally:
            db.set_progress_handler(None, 0)
        return await self.readers.run(job)

    def on_commit(self, listener: Callable[[], None]) -> None:
        self.writer.on_commit(listener)

    async def close(self) -> None:
        await self.writer.close()
        await self._checkpointer.stop()
        await self.readers.close()
        if self._read is not None:
            self._read.close()
            self._read = None
