"""The embedded store: SQLite files (WAL) under the data directory, the clinical store in the
named file and the HL7 message archive next to it (``<name>-archive.sqlite3``)."""

from pathlib import Path

from hub.base.errors import StoreError
from store.sqlite_archive import SqliteArchive
from store.sqlite_file import SqliteFile
from store.sqlite_jobs import SqliteJobs
from store.sqlite_ledger import SqliteLedger
from store.sqlite_resources import SqliteResources


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.archive_path = path.with_name(f"{path.stem}-archive{path.suffix}")
        self._files: list[SqliteFile] = []
        self._resources: SqliteResources | None = None
        self._archive: SqliteArchive | None = None
        self._ledger: SqliteLedger | None = None
        self._jobs: SqliteJobs | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clinical = SqliteFile(self.path)
        archive = SqliteFile(self.archive_path)
        for file in (clinical, archive):
            await file.open()
            self._files.append(file)
        self._resources = SqliteResources(clinical)
        self._archive = SqliteArchive(archive)
        self._ledger = SqliteLedger(clinical)
        self._jobs = SqliteJobs(clinical)
        for part in (self._resources, self._archive, self._ledger, self._jobs):
            await part.setup()

    @property
    def archive(self) -> SqliteArchive:
        if self._archive is None:
            raise StoreError("the store is not open")
        return self._archive

    @property
    def jobs(self) -> SqliteJobs:
        if self._jobs is None:
            raise StoreError("the store is not open")
        return self._jobs

    @property
    def ledger(self) -> SqliteLedger:
        if self._ledger is None:
            raise StoreError("the store is not open")
        return self._ledger

    @property
    def resources(self) -> SqliteResources:
        if self._resources is None:
            raise StoreError("the store is not open")
        return self._resources

    async def ping(self) -> None:
        if not self._files:
            raise StoreError("the store is not open")
        try:
            for file in self._files:
                file.read.execute("SELECT 1").fetchone()
        except Exception as exc:
            raise StoreError(f"store: {exc}") from exc

    async def close(self) -> None:
        for file in self._files:
            await file.close()
        self._files = []
        self._resources = None
        self._archive = None
        self._ledger = None
        self._jobs = None
