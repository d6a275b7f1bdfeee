"""A unit of work: the writes of one message or one Bundle, as data.

The caller builds a plan (each resource with its write mode); the store resolves it against
the current state inside one transaction that sees its own pending writes, and returns what
each write did. Both backends decide with ``decide`` below, so a mode means the same on
SQLite and MongoDB, and a resource whose content is unchanged makes no new version, no index
change and no event."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from hub.base.envelope import new_id
from hub.base.errors import VersionConflictError
from store.index import IndexRows
from store.versions import Resource, StoredVersion, WriteResult


class WriteMode(StrEnum):
    CREATE = "create"  # a new resource under the given id: fails when that id is taken
    REPLACE = "replace"  # this content as the next version; created when absent
    MERGE = "merge"  # top-level elements over the current content; created when absent
    IF_ABSENT = "if-absent"  # created only when it never existed; present or deleted: left be
    DELETE = "delete"  # a deletion version; nothing when absent or deleted already


@dataclass(frozen=True)
class Write:
    mode: WriteMode
    type: str
    id: str
    resource: Resource | None = None  # None for a delete
    if_match: int | None = None  # only from this version (0: only when there is none)
    index: IndexRows | None = None  # extracted by the caller, when the content is final
    digest: str | None = None  # ``content_digest`` of the resource, when the caller has it

    @classmethod
    def of(
        cls,
        mode: WriteMode,
        resource: Resource,
        if_match: int | None = None,
        index: IndexRows | None = None,
        digest: str | None = None,
    ) -> "Write":
        type_, id_ = resource["resourceType"], resource["id"]
        return cls(mode, type_, id_, resource, if_match, index, digest)

    @classmethod
    def delete(cls, type: str, id: str, if_match: int | None = None) -> "Write":
        return cls(WriteMode.DELETE, type, id, None, if_match)

    @property
    def key(self) -> str:
        return f"{self.type}/{self.id}"


@dataclass(frozen=True)
class Written:
    """What one write of a plan did."""

    version: StoredVersion | None  # current afterwards; None when nothing is (or it was left)
    created: bool = False  # made the resource: a first version, or one after a deletion
    changed: bool = False  # wrote a new version


@dataclass(frozen=True)
class Current:
    """What the store holds for one resource when a write is decided."""

    version: int  # 0: never existed
    deleted: bool
    digest: str | None  # of the current content; None when unknown (written before digests)
    body: Resource | None = None  # loaded for merges only


NEVER = Current(0, True, None)


@dataclass(frozen=True)
class NewVersion:
    version: int
    resource: Resource | None  # the content without meta.versionId/lastUpdated; None: deletion
    digest: str | None
    created: bool


class Unchanged:
    """The write would store what is there already: no version, no index, no event."""


class Left:
    """The write leaves the resource as it is (if-absent on one that exists, a delete of
    nothing): there is nothing to answer with."""


UNCHANGED, LEFT = Unchanged(), Left()
Decision = NewVersion | Unchanged | Left

_VOLATILE_META = ("versionId", "lastUpdated", "source")


def content_digest(resource: Resource) -> str:
    """Of the content a version carries, without what the store itself stamps on it."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _VOLATILE_META}
    content = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        content["meta"] = meta
    return hashlib.sha1(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def needs_body(write: Write) -> bool:
    return write.mode is WriteMode.MERGE


def decide(write: Write, current: Current) -> Decision:
    """What ``write`` does to a resource in state ``current``; VersionConflictError when its
    condition does not hold."""
    exists = current.version > 0 and not current.deleted
    if write.if_match is not None and write.if_match != current.version:
        raise VersionConflictError(
            f"{write.key} is at version {current.version}, not {write.if_match}", write.key
        )
    mode = write.mode
    if mode is WriteMode.DELETE:
        return NewVersion(current.version + 1, None, None, False) if exists else LEFT
    if mode is WriteMode.CREATE and current.version > 0:
        raise VersionConflictError(f"{write.key} exists already", write.key)
    if mode is WriteMode.IF_ABSENT and current.version > 0:
        return LEFT  # present, or deleted on purpose: context does not bring it back
    assert write.resource is not None
    content: dict[str, Any] = {**write.resource, "id": write.id}
    merged = mode is WriteMode.MERGE and exists and current.body is not None
    if merged:
        content = {**_without_store_meta(current.body or {}), **content}
    digest = write.digest if write.digest is not None and not merged else content_digest(content)
    if exists and digest == current.digest:
        return UNCHANGED
    return NewVersion(current.version + 1, content, digest, created=not exists)


def _without_store_meta(body: Resource) -> Resource:
    meta = {k: v for k, v in (body.get("meta") or {}).items() if k not in _VOLATILE_META}
    found = {k: v for k, v in body.items() if k != "meta"}
    if meta:
        found["meta"] = meta
    return found


def stamped(
    resource: Resource, version: int, last_updated: str, source: str | None = None
) -> Resource:
    """The stored form of a version: meta.versionId and meta.lastUpdated set by the store, and
    meta.source when the write has an origin (``hub.base.correlation``)."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = last_updated
    if source is not None:
        meta["source"] = source
    return {**resource, "meta": meta}


class WriteShortcuts:
    """``create``, ``update`` and ``delete`` as one-write plans, for every backend."""

    async def apply(self, writes: Sequence[Write]) -> list[Written]:
        raise NotImplementedError

    async def create(self, resource: Resource, id: str | None = None) -> StoredVersion:
        id = id or new_id()
        (written,) = await self.apply(
            [Write(WriteMode.CREATE, resource["resourceType"], id, resource)]
        )
        assert written.version is not None
        return written.version

    async def update(self, resource: Resource, if_match: int | None = None) -> WriteResult:
        (written,) = await self.apply([Write.of(WriteMode.REPLACE, resource, if_match)])
        assert written.version is not None
        return WriteResult(written.version, written.created, written.changed)

    async def delete(self, type: str, id: str, if_match: int | None = None) -> StoredVersion | None:
        (written,) = await self.apply([Write.delete(type, id, if_match)])
        return written.version
