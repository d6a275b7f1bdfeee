"""Group commit for the SQLite stores (clinical store, embedded bus): every write of one
event-loop turn shares one COMMIT.

With ``synchronous=FULL`` each COMMIT waits for the disk, and that wait, not the SQL, limits how
many writes a second one connection takes. So a write runs at once inside a SAVEPOINT of the
open group transaction (a failing write rolls back only itself), the group commits once in a
callback queued behind the writers of the same turn, and each writer returns only after that
COMMIT: a 201 is still on disk before it is sent. The clinical store reads on its own connection,
which sees only committed data (WAL), so nobody reads a write whose commit could still fail.
"""

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hub.errors import StoreError


class GroupCommit:
    def __init__(self, db: sqlite3.Connection, on_commit: Callable[[], None]) -> None:
        self._db = db
        self._on_commit = on_commit
        self._group: asyncio.Future[None] | None = None

    @contextmanager
    def unit(self) -> Iterator[asyncio.Future[None]]:
        """One writer's statements; await the yielded future once the block is left."""
        group = self._open()
        self._db.execute("SAVEPOINT unit")
        try:
            yield group
        except BaseException:
            self._db.execute("ROLLBACK TO unit")
            self._db.execute("RELEASE unit")
            raise
        self._db.execute("RELEASE unit")

    @contextmanager
    def short(self) -> Iterator[asyncio.Future[None] | None]:
        """A write that must not hold the file's lock for long: it joins a group already open
        in this turn, else commits at once, before the block returns (yields None then).

        For a database file that another process writes too: a group holds the write lock
        until its commit callback runs, and in a process busy with long work (a normalizer)
        that can be tens of milliseconds in which the other process cannot write at all."""
        if self._group is not None:
            with self.unit() as committed:
                yield committed
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield None
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"the store could not commit: {exc}") from exc
        self._on_commit()

    def flush(self) -> None:
        """Commit the open group now (before the connection closes)."""
        self._commit()

    def discard(self) -> None:
        """Forget the open group: the connection closes without committing, as in a crash."""
        group, self._group = self._group, None
        if group is not None and not group.done():
            group.cancel()

    def _open(self) -> asyncio.Future[None]:
        if self._group is None:
            loop = asyncio.get_running_loop()
            self._db.execute("BEGIN IMMEDIATE")
            self._group = loop.create_future()
            loop.call_soon(self._commit)
        return self._group

    def _commit(self) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if not group.done():
                group.set_exception(StoreError(f"the store could not commit: {exc}"))
            group.exception()  # every writer sees it; nobody need read it for the loop's sake
            return
        if not group.done():
            group.set_result(None)
        self._on_commit()


async def durable(committed: "asyncio.Future[None] | None") -> None:
    """Wait for a group's COMMIT. Shielded: a writer that is cancelled while it waits must not
    cancel the group's future under every other writer of the same turn."""
    if committed is not None:
        await asyncio.shield(committed)
