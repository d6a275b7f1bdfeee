"""The production store on MongoDB, through PyMongo's async client (write concern majority)."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from hub.errors import StoreError


class MongoStore:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=int(timeout_s * 1000), w="majority"
        )
        self.db = self._client.get_default_database(
            "jianhu", write_concern=WriteConcern(w="majority")
        )

    async def open(self) -> None:
        await self.ping()

    async def ping(self) -> None:
        try:
            await self._client.admin.command("ping")
        except PyMongoError as exc:
            raise StoreError(f"MongoDB: {type(exc).__name__}") from exc

    @property
    def resources(self) -> Any:
        raise StoreError("the MongoDB resource store is not available in this version")

    async def close(self) -> None:
        await self._client.close()
