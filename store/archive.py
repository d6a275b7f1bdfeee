"""The HL7 v2 message archive: every message as it arrived (raw bytes and decoded text), who
sent it, its type and control id, the patient identifiers in it (indexed), its status per stage
and the FHIR resources it produced. A replay is a new attempt at the same archived message."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

RECEIVED, PUBLISHED, NORMALIZED, STORED, FAILED, REJECTED, UNMAPPED = (
    "received",
    "published",
    "normalized",
    "stored",
    "failed",
    "rejected",
    "unmapped",  # archived and acknowledged; its type has no FHIR mapping yet (replay later)
)


@dataclass(frozen=True)
class ArchivedMessage:
    id: str
    received_at: datetime
    sender_application: str
    sender_facility: str
    peer: str  # the source address
    message_type: str  # ORU^R01
    control_id: str
    charset: str
    raw: bytes
    text: str
    status: str
    error: str = ""
    ack: str = ""
    attempts: int = 1
    patient_ids: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()  # Type/id of what normalization wrote


@dataclass(frozen=True)
class ArchiveQuery:
    sender_application: str | None = None
    message_type: str | None = None
    status: str | None = None
    control_id: str | None = None
    patient_id: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    limit: int = 100
    statuses: Sequence[str] = field(default_factory=tuple)


class MessageArchive(Protocol):
    async def add(self, message: ArchivedMessage) -> None:
        """Store a new message durably (the ACK waits for this)."""

    async def find_duplicate(
        self, sender_application: str, sender_facility: str, control_id: str, since: datetime
    ) -> ArchivedMessage | None:
        """The same sender and MSH-10 received since ``since`` (for replaying its ACK)."""

    async def set_status(
        self,
        id: str,
        status: str,
        error: str = "",
        ack: str | None = None,
        resources: Sequence[str] = (),
    ) -> None: ...

    async def mark_published(self, id: str, ack: str, wait: bool = True) -> None:
        """Record the ACK sent; the status becomes published unless a consumer already moved
        it on (the normalizer can finish before the publisher hears the confirm).

        ``wait=False`` lets the backend return before the write is durable: the mark only
        serves a resend (which gets the stored ACK back), and when it is lost in a crash a
        resend is published again as a new attempt, which the idempotent normalizer absorbs."""

    async def new_attempt(self, id: str) -> int:
        """Count a replay of the message; returns the attempt number."""

    async def get(self, id: str) -> ArchivedMessage: ...

    async def search(self, query: ArchiveQuery) -> Sequence[ArchivedMessage]: ...

    async def purge(self, message_type: str, before: datetime) -> int:
        """Delete (really) the messages of a type received before a time; returns how many."""
