"""One SQLite database file of the embedded store: a write connection whose writes are
group-committed, a read connection that sees only committed data (WAL), and the checkpointing
that keeps the WAL short.

The clinical store and the message archive live in two files, each with its own write lock: an
intake process that only archives messages and a normalizer process that writes resources never
wait for each other's transactions (the normalizer's short archive status updates aside)."""

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from hub.errors import StoreError
from hub.sqlite_commit import GroupCommit
from store.sqlite_checkpoint import Checkpointer

CACHE_KIB = 64 * 1024
CATCH_UP_S = 1.0


class SqliteFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._listeners: list[Callable[[], None]] = []
        self._caught_up_at = 0.0
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # an ACK or a 201 survives a power loss
            self.db.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does it
            self.db.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
            self.read = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            for db in (self.db, self.read):  # 64 MB of pages each: index upper levels stay hot
                db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        self.group = GroupCommit(self.db, self._after_commit)
        self._checkpointer = Checkpointer(path)
        self._checkpointer.start()

    def on_commit(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def close(self) -> None:
        self.group.flush()
        await self._checkpointer.stop()
        self.db.close()
        self.read.close()

    def _after_commit(self) -> None:
        for listener in self._listeners:
            listener()
        now = time.monotonic()
        if now - self._caught_up_at > CATCH_UP_S:
            # The checkpoint thread copies the bulk of the WAL while writes go on, but it can
            # never finish while writers keep appending, and SQLite restarts the WAL only after
            # a complete checkpoint: this connection, right after a commit, backfills the last
            # few frames, so the WAL is reused instead of growing without bound.
            self._caught_up_at = now
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
