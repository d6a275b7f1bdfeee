"""The audit log on MongoDB: one lean document per AuditEvent, immutable (see
``store.sqlite_audit`` for why it is kept apart from the versioned resources)."""

from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from hub.base.envelope import new_id
from hub.base.errors import ResourceNotFoundError, SearchError
from store.audit_columns import columns_of
from store.index import instant
from store.resources import AuditFilter, Resource, SearchPage, StoredVersion

Doc = dict[str, Any]
_FIELDS: tuple[str, ...] = ("_id", "recorded", "agent", "entity", "subtype", "action")
_FIELDS += ("outcome", "correlation", "body")
_PARAMS = {"_id": "_id", "date": "recorded", "agent-name": "agent", "entity": "entity"}
_PARAMS |= {"subtype": "subtype", "action": "action", "outcome": "outcome"}
_PARAMS |= {"correlation": "correlation"}  # for ``jianhu trace``; not a FHIR search parameter
_OPS = {"=": "$eq", ">=": "$gte", "<=": "$lte", ">": "$gt", "<": "$lt"}


def _query(filters: Sequence[AuditFilter]) -> Doc:
    query: Doc = {}
    for item in filters:
        if item.param not in _PARAMS or item.op not in _OPS:
            raise SearchError(f"the audit log cannot be searched by {item.param} {item.op}")
        query.setdefault(_PARAMS[item.param], {})[_OPS[item.op]] = item.value
    return query


class MongoAuditLog:
    def __init__(
        self,
        collection: AsyncCollection[Doc],
        session: ContextVar[AsyncClientSession | None],
    ) -> None:
        self._events = collection
        self._session = session

    async def create_indexes(self) -> None:
        for keys in (
            ["recorded"],
            ["agent", "recorded"],
            ["entity", "recorded"],
            ["correlation", "recorded"],
            ["seq"],
        ):
            await self._events.create_index([(key, ASCENDING) for key in keys])

    async def insert(self, events: Sequence[Resource]) -> list[Resource]:
        now = instant(datetime.now(UTC))
        stored: list[Resource] = []
        docs = []
        for event in events:
            full = {**event, "id": event.get("id") or new_id(), "meta": {"versionId": "1"}}
            full["meta"]["lastUpdated"] = now
            stored.append(full)
            doc = dict(zip(_FIELDS, columns_of(full), strict=True))
            docs.append({**doc, "seq": new_id()})
        if docs:
            await self._events.insert_many(docs, session=self._session.get())
        return stored

    async def read(self, id: str) -> StoredVersion:
        doc = await self._events.find_one({"_id": id})
        if doc is None:
            raise ResourceNotFoundError(f"AuditEvent/{id} does not exist")
        return _version(doc)

    async def search(
        self, filters: Sequence[AuditFilter], count: int, cursor: str | None, newest_first: bool
    ) -> SearchPage:
        query = _query(filters)
        if cursor is not None:
            query["seq"] = {"$lt" if newest_first else "$gt": cursor}
        order = DESCENDING if newest_first else ASCENDING
        docs = [doc async for doc in self._events.find(query).sort("seq", order).limit(count + 1)]
        page = docs[:count]
        next_cursor = page[-1]["seq"] if len(docs) > count else None
        return SearchPage([_version(doc) for doc in page], next_cursor)

    async def count(self, filters: Sequence[AuditFilter]) -> int:
        return await self._events.count_documents(_query(filters))


def _version(doc: Doc) -> StoredVersion:
    moment = datetime.fromisoformat(doc["recorded"].replace("Z", "+00:00"))
    return StoredVersion("AuditEvent", doc["_id"], 1, moment, bytes(doc["body"]))
