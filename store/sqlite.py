"""The embedded store: one SQLite file (WAL) under the data directory."""

import sqlite3
from pathlib import Path

from hub.errors import StoreError
from store.sqlite_archive import SqliteArchive
from store.sqlite_checkpoint import Checkpointer
from store.sqlite_resources import SqliteResources

CACHE_KIB = 64 * 1024


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._resources: SqliteResources | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a 201 survives a power loss too
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does it
            self._db.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
            self._read_db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            for db in (self._db, self._read_db):  # 64 MB of pages each: index upper levels stay hot
                db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._resources = SqliteResources(self._db, self._read_db)
            self._checkpointer = Checkpointer(self.path)
            self._checkpointer.start()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    @property
    def archive(self) -> SqliteArchive:
        return self.resources.archive

    @property
    def resources(self) -> SqliteResources:
        if self._resources is None:
            raise StoreError("the store is not open")
        return self._resources

    async def ping(self) -> None:
        if self._db is None:
            raise StoreError("the store is not open")
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"store: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            if self._resources is not None:
                self._resources.flush()
            await self._checkpointer.stop()
            self._db.close()
            self._read_db.close()
            self._db = None
            self._resources = None
