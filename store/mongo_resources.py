"""The clinical store on MongoDB (production): the same contract as the SQLite store.

Collections: ``resources`` (the current version of each resource, with the digest of its
content, its search index ``ix`` and sort values ``srt``), ``versions`` (every version, for
vread and history), ``outbox`` (events, written in the same transaction as their write) and
``audit_events``. A plan is one multi-document transaction (write concern majority) run by
the driver's ``with_transaction``, which retries it whole on transient errors and on an unknown
commit result; it reads the current versions of all its resources with one ``$in`` query and
writes with bulk operations: a few round trips whatever the number of resources.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from hub.base import correlation
from hub.base.correlation import Origin
from hub.base.envelope import new_id
from hub.base.errors import ResourceGoneError, ResourceNotFoundError
from store.cursors import decode_cursor, encode_cursor
from store.index import IndexRows, extract, instant, with_last_updated
from store.mongo_audit import MongoAuditLog
from store.mongo_search import (
    after,
    compartment_filter,
    compile_clause,
    index_document,
    sort_document,
    sort_fields,
)
from store.plan import (
    LEFT,
    UNCHANGED,
    Current,
    NewVersion,
    Write,
    WriteMode,
    WriteShortcuts,
    Written,
    decide,
    stamped,
)
from store.query import SearchQuery
from store.resources import OutboxEvent, Resource, SearchPage, StoredVersion

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
        [("correlation", ASCENDING), ("seq", ASCENDING)],
    ],
}


def _version(doc: Doc) -> StoredVersion:
    moment = datetime.fromisoformat(doc["last_updated"].replace("Z", "+00:00"))
    body = doc.get("body")
    return StoredVersion(
        doc["type"], doc["id"], doc["version"], moment, bytes(body) if body else None
    )


class MongoResources(WriteShortcuts):
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

    async def _run(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        async with self._client.start_session() as session:
            result = await session.with_transaction(work)
        self._committed.set()
        return result

    # --- writes: plans ---
    async def apply(self, writes: Sequence[Write]) -> list[Written]:
        origin = correlation.current()

        async def work(session: AsyncClientSession) -> list[Written]:
            # ``with_transaction`` may run this again: every attempt starts from the store
            plan = _PlanState(instant(datetime.now(UTC)), origin)
            keys = list(dict.fromkeys(write.key for write in writes))
            async for doc in self._resources.find(
                {"_id": {"$in": keys}}, {"ix": 0, "srt": 0}, session=session
            ):
                plan.found(doc)
            written = [plan.decide(write) for write in writes]
            if plan.versions:
                await self._versions.insert_many(plan.versions, session=session)
                await self._resources.bulk_write(
                    [ReplaceOne({"_id": k}, d, upsert=True) for k, d in plan.current.items()],
                    session=session,
                )
                await self._outbox.insert_many(plan.events, session=session)
            return written

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

    async def digests(self, keys: Sequence[tuple[str, str]]) -> dict[str, str]:
        ids = [f"{type}/{id}" for type, id in keys]
        cursor = self._resources.find({"_id": {"$in": ids}, "digest": {"$ne": None}}, {"digest": 1})
        return {doc["_id"]: doc["digest"] async for doc in cursor}

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
                e["_id"],
                e["topic"],
                e["type"],
                e["id"],
                e["version"],
                _bytes(bodies.get(k)),
                e.get("correlation"),
            )
            for e, k in zip(events, keys, strict=True)
        ]

    async def traced(self, correlation: str, limit: int) -> Sequence[StoredVersion]:
        found = self._versions.find({"correlation": correlation}).sort("seq", ASCENDING)
        return [_version(doc) async for doc in found.limit(limit)]

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


class _PlanState:
    """One attempt at a plan: what the store held, and what the plan writes, in memory until
    the bulk writes; each write sees the ones before it."""

    def __init__(self, now: str, origin: Origin | None) -> None:
        self.now, self.origin = now, origin
        self.source = origin.source if origin is not None else None
        self.correlation = origin.correlation if origin is not None else None
        self.state: dict[str, Current] = {}
        self.latest: dict[str, StoredVersion] = {}
        self.versions: list[Doc] = []
        self.current: dict[str, Doc] = {}
        self.events: list[Doc] = []

    def found(self, doc: Doc) -> None:
        body = doc.get("body")
        self.state[doc["_id"]] = Current(
            doc["version"], doc["deleted"], doc.get("digest"), orjson.loads(body) if body else None
        )
        self.latest[doc["_id"]] = _version(doc)

    def decide(self, write: Write) -> Written:
        decision = decide(write, self.state.get(write.key, Current(0, True, None)))
        if decision is LEFT:
            return Written(None)
        if decision is UNCHANGED:
            return Written(self.latest[write.key])
        assert isinstance(decision, NewVersion)
        stored = self._record(write, decision)
        return Written(stored, created=decision.created, changed=True)

    def _record(self, write: Write, decision: NewVersion) -> StoredVersion:
        type_, id_, version, now = write.type, write.id, decision.version, self.now
        content = (
            stamped(decision.resource, version, now, self.source) if decision.resource else None
        )
        raw = orjson.dumps(content) if content is not None else None
        seq = new_id()
        common = {"type": type_, "id": id_, "version": version, "last_updated": now, "seq": seq}
        traced = {"correlation": self.correlation}
        self.versions.append({"_id": f"{write.key}/{version}", **common, "body": raw, **traced})
        current: Doc = {
            **common,
            "deleted": content is None,
            "body": raw,
            "digest": decision.digest,
        }
        if content is not None:
            rows = _index_rows(write, content, now)
            current["ix"], current["srt"] = index_document(rows), sort_document(rows)
        self.current[write.key] = current
        change = "deleted" if content is None else "created" if version == 1 else "updated"
        topic = f"fhir.{type_}.{change}"
        self.events.append(
            {
                "_id": seq,
                "topic": topic,
                "type": type_,
                "id": id_,
                "version": version,
                "correlation": self.correlation,
            }
        )
        self.state[write.key] = Current(version, content is None, decision.digest, content)
        stored = StoredVersion(type_, id_, version, _moment(now), raw)
        self.latest[write.key] = stored
        return stored


def _index_rows(write: Write, content: Resource, now: str) -> IndexRows:
    given = write.index if write.mode is not WriteMode.MERGE else None
    return with_last_updated(given if given is not None else extract(content), now)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
