"""The resource part of the store contract: versioned FHIR resources with history.

Every write that changes a resource makes a new version: ``meta.versionId`` counts from 1,
``meta.lastUpdated`` is the commit time, a delete is a version too (``deleted``), and every
version stays readable (vread, history); a write of the content already there makes none.
Writes come as plans (``store.plan``): one message's or one Bundle's writes resolved in one
transaction. Bodies travel as parsed dicts in and orjson bytes out, so a read serves stored
bytes unchanged.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from store.plan import Write, Written
from store.query import SearchQuery
from store.versions import Resource, StoredVersion, WriteResult

__all__ = ["Resource", "StoredVersion", "WriteResult"]  # where most callers find them


@dataclass(frozen=True)
class OutboxEvent:
    """A committed write waiting to be published as ``fhir.<Type>.<created|updated|deleted>``."""

    seq: int | str  # the backend's publish order
    topic: str
    type: str
    id: str
    version: int
    body: bytes | None  # the version written; None for a deletion
    correlation: str | None = None  # of the message or request that wrote it


@dataclass(frozen=True)
class AuditFilter:
    """One condition on the audit log: ``date >= 2026-11-01T00:00:00.000Z``."""

    param: str  # _id, date, agent-name, entity, subtype, action, outcome, correlation
    op: str  # = >= <= > <
    value: str


@dataclass(frozen=True)
class SearchPage:
    items: Sequence[StoredVersion]
    next_cursor: str | None  # opaque; None on the last page


class AuditLog(Protocol):
    async def read(self, id: str) -> StoredVersion: ...

    async def search(
        self, filters: Sequence[AuditFilter], count: int, cursor: str | None, newest_first: bool
    ) -> SearchPage: ...

    async def count(self, filters: Sequence[AuditFilter]) -> int: ...


class ResourceStore(Protocol):
    async def apply(self, writes: Sequence[Write]) -> list[Written]:
        """Every write of the plan in one transaction, in order, each seeing those before it:
        all or nothing (``VersionConflictError`` names the write whose condition failed).
        The versions written carry the origin the caller runs under
        (``hub.base.correlation.current()``): in ``meta.source`` and beside the version."""

    async def create(self, resource: Resource, id: str | None = None) -> StoredVersion:
        """A one-write plan: a new resource under a server-assigned (or the given) id."""

    @property
    def audit(self) -> "AuditLog":
        """The audit log: AuditEvents, immutable, kept apart from the versioned resources."""

    async def append_audit(self, events: Sequence[Resource]) -> list[Resource]:
        """Append AuditEvents in one write (no versions, no outbox events); returns them with
        their ids."""

    async def read(self, type: str, id: str) -> StoredVersion:
        """The current version; ``ResourceGoneError`` if deleted, ``ResourceNotFoundError``."""

    async def vread(self, type: str, id: str, version: int) -> StoredVersion: ...

    async def update(self, resource: Resource, if_match: int | None = None) -> WriteResult:
        """A one-write plan: ``resource`` as the next version of ``resource['id']`` (created
        when it does not exist yet; the current version when the content is unchanged)."""

    async def delete(self, type: str, id: str, if_match: int | None = None) -> StoredVersion | None:
        """A one-write plan: a deletion version; None when there was nothing to delete."""

    async def digests(self, keys: Sequence[tuple[str, str]]) -> dict[str, str]:
        """``Type/id`` -> the digest of the current content, for those that exist and have one:
        a writer checks what is unchanged before it extracts index rows for nothing."""

    async def read_many(self, keys: Sequence[tuple[str, str]]) -> Sequence[StoredVersion]:
        """The current versions of those that exist and are not deleted, in no set order."""

    async def referencing(self, target: str, limit: int) -> Sequence[StoredVersion]:
        """Current resources of any type with a search reference to ``target`` (``Type/id``)."""

    async def search(
        self, query: SearchQuery, count: int = 50, cursor: str | None = None
    ) -> SearchPage:
        """Current, not deleted resources that match every clause of the parsed query, in the
        query's sort order (then by id); ``cursor`` continues after an earlier page."""

    async def count(self, query: SearchQuery) -> int: ...

    async def traced(self, correlation: str, limit: int) -> Sequence[StoredVersion]:
        """The versions written under this correlation id, in the order they were written
        (superseded and deleted ones included)."""

    async def pending_events(self, limit: int) -> Sequence[OutboxEvent]:
        """The oldest events of the outbox (written in the same transaction as their write)."""

    async def events_published(self, events: Sequence[OutboxEvent]) -> None:
        """Remove these events once the bus confirmed them."""

    def committed(self) -> asyncio.Event:
        """Set after every commit that wrote events, so the relay need not poll hard."""

    async def history(
        self,
        type: str | None = None,
        id: str | None = None,
        since: datetime | None = None,
        count: int = 100,
        cursor: str | None = None,
    ) -> SearchPage:
        """Versions newest first (deletions included, as versions without a body); ``cursor``
        continues after an earlier page."""
