"""The production store on MongoDB, through PyMongo's async client (write concern majority;
multi-document transactions need a replica set, even a one-node one)."""

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from hub.base.errors import StoreError
from store.mongo_archive import MongoArchive
from store.mongo_jobs import MongoJobs
from store.mongo_ledger import MongoLedger
from store.mongo_resources import Doc, MongoResources


class MongoStore:
    def __init__(self, url: str, timeout_s: float = 5.0, database: str = "jianhu") -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=int(timeout_s * 1000), w="majority"
        )
        self.db = self._client.get_default_database(
            database, write_concern=WriteConcern(w="majority")
        )
        self._resources: MongoResources | None = None
        self._archive: MongoArchive | None = None
        self._ledger: MongoLedger | None = None
        self._jobs: MongoJobs | None = None

    async def open(self) -> None:
        await self.ping()
        resources = MongoResources(self._client, self.db)
        try:
            await resources.create_indexes()
        except PyMongoError as exc:
            raise StoreError(f"MongoDB: cannot create the indexes: {type(exc).__name__}") from exc
        self._resources = resources
        self._archive = MongoArchive(self.db["hl7_messages"], self.db["hl7_claims"])
        self._ledger = MongoLedger(self.db["ledger"])
        self._jobs = MongoJobs(self.db["jobs"])
        try:
            await self._archive.create_indexes()
            await self._ledger.create_indexes()
        except PyMongoError as exc:
            raise StoreError(f"MongoDB: cannot create the indexes: {type(exc).__name__}") from exc

    @property
    def jobs(self) -> MongoJobs:
        if self._jobs is None:
            raise StoreError("the store is not open")
        return self._jobs

    @property
    def ledger(self) -> MongoLedger:
        if self._ledger is None:
            raise StoreError("the store is not open")
        return self._ledger

    @property
    def archive(self) -> MongoArchive:
        if self._archive is None:
            raise StoreError("the store is not open")
        return self._archive

    @property
    def resources(self) -> MongoResources:
        if self._resources is None:
            raise StoreError("the store is not open")
        return self._resources

    async def ping(self) -> None:
        try:
            await self._client.admin.command("ping")
        except PyMongoError as exc:
            raise StoreError(f"MongoDB: {type(exc).__name__}") from exc

    async def close(self) -> None:
        self._resources = None
        await self._client.close()
