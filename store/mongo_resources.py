"""The clinical store on MongoDB (production): the same contract as the SQLite store.

Collections: ``resources`` (the current version of each resource, with its search index
``ix`` and sort values ``srt``), ``versions`` (every version, for vread and history),
``outbox`` (events, written in the same transaction as their write) and ``audit_events``.
Every write is a multi-document transaction with write concern majority, retried by the
driver on transient errors; a ``transaction()`` block joins its writes into one.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from hub.envelope import new_id
from hub.errors import ResourceGoneError, ResourceNotFoundError, VersionConflictError
from store.index import extract, instant
from store.mongo_audit import MongoAuditLog
from store.mongo_search import (
    after,
    compartment_filter,
    compile_clause,
    index_document,
    sort_document,
    sort_fields,
)
from store.query import SearchQuery
from store.resources import OutboxEvent, Resource, SearchPage, StoredVersion, WriteResult
from store.sqlite_resources import decode_cursor, encode_cursor

T = TypeVar("T")
Doc = dict[str, Any]
_session: ContextVar[AsyncClientSession | None] = ContextVar("mongo_session", default=None)
CHAIN_LIMIT = 10_000  # targets a chained search may resolve to

INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    "resources": [
        [("type", ASCENDING), ("id", ASCENDING)],
        [("type", 1), ("ix.token.p", 1), ("ix.token.c", 1), ("ix.token.s", 1)],
        [("type", 1), ("ix.reference.p", 1), ("ix.reference.t", 1)],
        [("ix.reference.t", 1)],
        [("type", 1), ("ix.string.p", 1), ("ix.string.n", 1)],
        [("type", 1), ("ix.date.p", 1), ("ix.date.lo", 1)],
        [("type", 1), ("ix.quantity.p", 1), ("ix.quantity.v", 1)],
        [("type", 1), ("ix.uri.p", 1), ("ix.uri.v", 1)],
        [("type", 1), ("ix.composite.p", 1), ("ix.composite.c1", 1)],
    ],
    "versions": [
        [("seq", DESCENDING)],
        [("type", ASCENDING), ("seq", DESCENDING)],
        [("type", ASCENDING), ("id", ASCENDING), ("seq", DESCENDING)],
    ],
}


def _version(doc: Doc) -> StoredVersion:
    moment = datetime.fromisoformat(doc["last_updated"].replace("Z", "+00:00"))
    body = doc.get("body")
    return StoredVersion(
        doc["type"], doc["id"], doc["version"], moment, bytes(body) if body else None
    )


class MongoResources:
    def __init__(self, client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> None:
        self._client, self._db = client, db
        self._resources = db["resources"]
        self._versions = db["versions"]
        self._outbox = db["outbox"]
        self._audit = MongoAuditLog(db["audit_events"], _session)
        self._committed = asyncio.Event()

    async def create_indexes(self) -> None:
        for name, indexes in INDEXES.items():
            for keys in indexes:
                await self._db[name].create_index(keys)
        await self._audit.create_indexes()

    # --- transactions ---
    async def _run(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        outer = _session.get()
        if outer is not None:
            return await work(outer)
        async with self._client.start_session() as session:
            result = await session.with_transaction(work)
        self._committed.set()
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._client.start_session() as session, await session.start_transaction():
            token = _session.set(session)
            try:
                yield
            finally:
                _session.reset(token)
        self._committed.set()

    # --- writes ---
    async def _write(
        self, session: AsyncClientSession, type: str, id: str, body: Resource | None, version: int
    ) -> StoredVersion:
        last_updated = instant(datetime.now(UTC))
        seq = new_id()
        stored = None
        if body is not None:
            meta = {
                **(body.get("meta") or {}),
                "versionId": str(version),
                "lastUpdated": last_updated,
            }
            stored = {**body, "id": id, "meta": meta}
        raw = orjson.dumps(stored) if stored is not None else None
        key = f"{type}/{id}"
        common = {
            "type": type,
            "id": id,
            "version": version,
            "last_updated": last_updated,
            "seq": seq,
        }
        await self._versions.insert_one(
            {"_id": f"{key}/{version}", **common, "body": raw}, session=session
        )
        current: Doc = {**common, "deleted": stored is None, "body": raw}
        if stored is not None:
            rows = extract(stored)
            current["ix"], current["srt"] = index_document(rows), sort_document(rows)
        await self._resources.replace_one({"_id": key}, current, upsert=True, session=session)
        change = "deleted" if stored is None else "created" if version == 1 else "updated"
        await self._outbox.insert_one(
            {
                "_id": seq,
                "topic": f"fhir.{type}.{change}",
                "type": type,
                "id": id,
                "version": version,
            },
            session=session,
        )
        return StoredVersion(
            type, id, version, datetime.fromisoformat(last_updated.replace("Z", "+00:00")), raw
        )

    async def _current(self, session: AsyncClientSession, type: str, id: str) -> Doc | None:
        return await self._resources.find_one(
            {"_id": f"{type}/{id}"}, {"version": 1, "deleted": 1}, session=session
        )

    async def create(self, resource: Resource, id: str | None = None) -> StoredVersion:
        async def work(session: AsyncClientSession) -> StoredVersion:
            return await self._write(session, resource["resourceType"], id or new_id(), resource, 1)

        return await self._run(work)

    async def update(self, resource: Resource, if_match: int | None = None) -> WriteResult:
        type, id = resource["resourceType"], resource["id"]

        async def work(session: AsyncClientSession) -> WriteResult:
            current = await self._current(session, type, id)
            version = current["version"] if current else 0
            if if_match is not None and if_match != version:
                raise VersionConflictError(f"{type}/{id} is at version {version}, not {if_match}")
            stored = await self._write(session, type, id, resource, version + 1)
            return WriteResult(stored, created=current is None or current["deleted"])

        return await self._run(work)

    async def delete(self, type: str, id: str, if_match: int | None = None) -> StoredVersion | None:
        async def work(session: AsyncClientSession) -> StoredVersion | None:
            current = await self._current(session, type, id)
            if current is None or current["deleted"]:
                return None
            if if_match is not None and if_match != current["version"]:
                raise VersionConflictError(
                    f"{type}/{id} is at version {current['version']}, not {if_match}"
                )
            return await self._write(session, type, id, None, current["version"] + 1)

        return await self._run(work)

    # --- reads ---
    async def read(self, type: str, id: str) -> StoredVersion:
        doc = await self._resources.find_one({"_id": f"{type}/{id}"}, {"ix": 0, "srt": 0})
        if doc is None:
            raise ResourceNotFoundError(f"{type}/{id} does not exist")
        if doc["deleted"]:
            raise ResourceGoneError(f"{type}/{id} was deleted (version {doc['version']})")
        return _version(doc)

    async def vread(self, type: str, id: str, version: int) -> StoredVersion:
        doc = await self._versions.find_one({"_id": f"{type}/{id}/{version}"})
        if doc is None:
            raise ResourceNotFoundError(f"{type}/{id} has no version {version}")
        if doc.get("body") is None:
            raise ResourceGoneError(f"{type}/{id} version {version} is a deletion")
        return _version(doc)

    async def read_many(self, keys: Sequence[tuple[str, str]]) -> Sequence[StoredVersion]:
        ids = [f"{type}/{id}" for type, id in keys]
        cursor = self._resources.find({"_id": {"$in": ids}, "deleted": False}, {"ix": 0, "srt": 0})
        return [_version(doc) async for doc in cursor]

    async def referencing(self, target: str, limit: int) -> Sequence[StoredVersion]:
        cursor = self._resources.find(
            {"ix.reference.t": target, "deleted": False}, {"ix": 0, "srt": 0}
        ).limit(limit)
        return [_version(doc) async for doc in cursor]

    async def _filter(self, query: SearchQuery) -> Doc:
        parts: list[Doc] = [{"type": query.resource_type, "deleted": False}]
        if query.compartment is not None:
            parts.append(compartment_filter(query.resource_type, query.compartment))
        for clause in query.clauses:
            chained = None
            if clause.chain is not None:
                inner = SearchQuery(
                    clause.chain_type or "", (clause.chain,), compartment=clause.chain_compartment
                )
                docs = self._resources.find(await self._filter(inner), {"id": 1}).limit(CHAIN_LIMIT)
                chained = [f"{clause.chain_type}/{doc['id']}" async for doc in docs]
            parts.append(compile_clause(clause, chained))
        return {"$and": parts}

    async def search(
        self, query: SearchQuery, count: int = 50, cursor: str | None = None
    ) -> SearchPage:
        filter = await self._filter(query)
        fields = sort_fields(query.sort)
        if cursor is not None:
            filter = {"$and": [filter, after(fields, decode_cursor(cursor, len(fields)))]}
        docs = [
            doc
            async for doc in self._resources.find(filter, {"ix": 0}).sort(fields).limit(count + 1)
        ]
        page = docs[:count]
        next_cursor = None
        if len(docs) > count:
            next_cursor = encode_cursor([_field(page[-1], name) for name, _ in fields])
        return SearchPage([_version(doc) for doc in page], next_cursor)

    async def count(self, query: SearchQuery) -> int:
        return await self._resources.count_documents(await self._filter(query))

    async def history(
        self,
        type: str | None = None,
        id: str | None = None,
        since: datetime | None = None,
        count: int = 100,
        cursor: str | None = None,
    ) -> SearchPage:
        filter: Doc = {}
        if type is not None:
            filter["type"] = type
        if id is not None:
            filter["id"] = id
        if since is not None:
            filter["last_updated"] = {"$gte": instant(since)}
        if cursor is not None:
            filter["seq"] = {"$lt": cursor}
        docs = [
            doc
            async for doc in self._versions.find(filter).sort("seq", DESCENDING).limit(count + 1)
        ]
        page = docs[:count]
        next_cursor = page[-1]["seq"] if len(docs) > count else None
        return SearchPage([_version(doc) for doc in page], next_cursor)

    # --- outbox ---
    async def pending_events(self, limit: int) -> Sequence[OutboxEvent]:
        events = [doc async for doc in self._outbox.find().sort("_id", ASCENDING).limit(limit)]
        keys = [f"{e['type']}/{e['id']}/{e['version']}" for e in events]
        bodies = {
            doc["_id"]: doc.get("body") async for doc in self._versions.find({"_id": {"$in": keys}})
        }
        return [
            OutboxEvent(
                e["_id"], e["topic"], e["type"], e["id"], e["version"], _bytes(bodies.get(k))
            )
            for e, k in zip(events, keys, strict=True)
        ]

    async def events_published(self, events: Sequence[OutboxEvent]) -> None:
        await self._outbox.delete_many({"_id": {"$in": [e.seq for e in events]}})

    def committed(self) -> asyncio.Event:
        return self._committed

    # --- audit ---
    @property
    def audit(self) -> MongoAuditLog:
        return self._audit

    async def append_audit(self, events: Sequence[Resource]) -> list[Resource]:
        stored: list[Resource] = await self._audit.insert(events)
        return stored

    def flush(self) -> None:
        """Nothing to do: every write commits before it returns."""


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


def _field(doc: Doc, dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
