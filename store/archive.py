"""The message archive: every HL7 v2 message (and FHIR message over AMQP) as it arrived
(raw bytes and decoded text), who sent it, its type and control id, the patient identifiers in
it (indexed), its status per stage and the FHIR resources it produced. A replay is a new
attempt at the same archived message.

The archive also decides, atomically, whether a message is new: ``claim`` files it unless the
same sender already sent the same control id with the same content (a resend), and records
which process claimed it, so a copy arriving at another connection or process at the same
moment, or after a crash, is answered from the first without being processed again."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

RECEIVED, PUBLISHED, NORMALIZED, STORED, FAILED, REJECTED, UNMAPPED, STRANDED, PROCESSING = (
    "received",  # archived and claimed; its publish is not yet confirmed
    "published",
    "normalized",
    "stored",
    "failed",
    "rejected",
    "unmapped",  # archived and acknowledged; its type has no FHIR mapping yet (replay later)
    "stranded",  # archived, never published (a crash), left for a person by configuration
    "processing",  # taken by the process that claimed it, without a publish (FHIR over AMQP)
)
# An attempt that ended so needs no second processing; a failed one may (a redrive after a fix)
PROCESSED = frozenset({STORED, UNMAPPED})
# Not purged, however old: still on their way (a big message's text lives only here, its bus
# message is a claim check) or waiting in the dead letters for a person to redrive them.
KEPT_BY_PURGE = (RECEIVED, PUBLISHED, FAILED, PROCESSING)


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
    content_hash: str = ""  # the message without MSH-7: the same content resent matches
    duplicate_of: str = ""  # an earlier message that used the same control id for other content
    claimed_by: str = ""  # the process that publishes it
    claimed_at: datetime | None = None
    processings: int = 0  # how often a normalizer finished with it: more than attempts is a bug


class ClaimKind(StrEnum):
    NEW = "new"  # filed now: this process publishes it
    RESEND = "resend"  # the same sender, control id and content were filed before
    REUSE_REFUSED = "reuse-refused"  # filed as rejected: the control id was used for other content


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    message: ArchivedMessage  # the filed message, or the earlier one a resend repeats


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
        """Store a message durably, as it is (a refused one, kept for a person)."""

    async def claim(
        self, message: ArchivedMessage, since: datetime, refuse_reuse: bool = False
    ) -> Claim:
        """In one atomic step, durably: a RESEND of the message received since ``since`` with
        the same sender, control id and content hash; else the message filed as NEW, linked
        (``duplicate_of``) to the latest message that used its control id for other content,
        or, with ``refuse_reuse``, filed as rejected (REUSE_REFUSED)."""

    async def take_over(
        self, id: str, claimant: str, stale_before: datetime
    ) -> ArchivedMessage | None:
        """Claim an unpublished (RECEIVED) message for ``claimant``, if it already holds it or
        its claim is older than ``stale_before`` (its claimant crashed or gave up); None when
        it is published, or another live process holds it."""

    async def stranded(self, stale_before: datetime, limit: int) -> Sequence[ArchivedMessage]:
        """RECEIVED messages whose claim is older than ``stale_before``, oldest first."""

    async def set_status(
        self,
        id: str,
        status: str,
        error: str = "",
        ack: str | None = None,
        resources: Sequence[str] = (),
        processed: bool = False,
    ) -> None:
        """``processed``: a normalizer finished with the message (counted in ``processings``)."""

    async def mark_published(self, id: str, wait: bool = True) -> None:
        """The status becomes published unless a consumer already moved it on (the normalizer
        can finish before the publisher hears the confirm).

        ``wait=False`` lets the backend return before the write is durable: when the mark is
        lost in a crash the message is published again with the same attempt number, and the
        normalizer skips an attempt it has already processed."""

    async def new_attempt(self, id: str, claimant: str) -> int:
        """Count a replay of the message, claimed by ``claimant``; returns the attempt number."""

    async def get(self, id: str) -> ArchivedMessage: ...

    async def search(self, query: ArchiveQuery) -> Sequence[ArchivedMessage]: ...

    async def purge(self, message_type: str, before: datetime) -> int:
        """Delete (really) the messages of a type received before a time; returns how many."""


def filed_claim(
    message: ArchivedMessage, earlier: Sequence[ArchivedMessage], refuse_reuse: bool
) -> Claim:
    """The claim of a message that is no resend: linked to the latest other message that used
    its control id within the window, and rejected when such reuse is refused."""
    if not earlier:
        return Claim(ClaimKind.NEW, message)
    linked = replace(message, duplicate_of=earlier[0].id)
    if not refuse_reuse:
        return Claim(ClaimKind.NEW, linked)
    error = f"MSH-10 {message.control_id} was used before for other content ({earlier[0].id})"
    return Claim(ClaimKind.REUSE_REFUSED, replace(linked, status=REJECTED, error=error))
