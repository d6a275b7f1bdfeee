"""The delivery ledger: one row per business submission to an external system (a front page,
a settlement list, a fee-detail document), with every attempt and its request and response,
and the links between an upload, its cancellation and the re-upload that replaces it.

Statuses: ``pending`` (recorded, not sent yet), ``sending`` (an attempt is under way),
``accepted``, ``rejected`` (a business rule said no: nobody resends, a person looks),
``failed`` (transport trouble: resent with backoff at ``next_attempt_at``), ``dead`` (failed
too often: a person redrives it), ``cancelled`` (withdrawn at the external system, or never
sent and withdrawn here)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

PENDING, SENDING, ACCEPTED, REJECTED, FAILED, DEAD, CANCELLED = (
    "pending",
    "sending",
    "accepted",
    "rejected",
    "failed",
    "dead",
    "cancelled",
)
OPEN = (PENDING, SENDING, FAILED)  # still on its way: a new version waits or supersedes it
KINDS = ("upload", "cancel")


@dataclass(frozen=True)
class Attempt:
    number: int
    started_at: datetime
    finished_at: datetime
    outcome: str  # accepted | rejected | failed
    request: str  # as sent (stored; masked in logs, never logged)
    response: str  # as received, or the transport error
    error: str = ""


@dataclass(frozen=True)
class Submission:
    id: str
    adapter: str  # "drg"
    interface: str  # "frontpage"
    business_key: str  # 病案号 + 住院次数, for example
    kind: str  # upload | cancel
    payload: str  # the request body as built (JSON text)
    content_hash: str  # what the payload says, for "same content is not sent again"
    status: str
    created_at: datetime
    updated_at: datetime
    attempts: tuple[Attempt, ...] = ()
    next_attempt_at: datetime | None = None
    error: str = ""  # why it was rejected, failed or died
    external_id: str = ""  # the receiver's id of the accepted upload, when it gives one
    cancels: str = ""  # for a cancellation: the upload it withdraws
    replaces: str = ""  # for a re-upload: the upload it supersedes
    # the correlation ids of the versions it was built from: the messages and requests that
    # led to it (``jianhu trace`` follows a message to its submissions by these)
    correlations: tuple[str, ...] = ()


@dataclass(frozen=True)
class LedgerQuery:
    adapter: str | None = None
    interface: str | None = None
    business_key: str | None = None
    statuses: Sequence[str] = field(default_factory=tuple)
    created_from: datetime | None = None
    created_to: datetime | None = None
    correlation: str | None = None  # built from a version this message or request wrote
    limit: int = 100


class Ledger(Protocol):
    async def add(self, submission: Submission) -> None:
        """Record a new submission durably before anything is sent."""

    async def get(self, id: str) -> Submission: ...

    async def latest(
        self, adapter: str, interface: str, business_key: str, kind: str = "upload"
    ) -> Submission | None:
        """The newest submission of this kind for a business key."""

    async def search(self, query: LedgerQuery) -> Sequence[Submission]:
        """Newest first."""

    async def claim(self, id: str, expected: Sequence[str], now: datetime) -> Submission | None:
        """Move a submission whose status is one of ``expected`` to ``sending``; None when
        another worker was first (so an attempt never runs twice)."""

    async def finish(
        self,
        id: str,
        attempt: Attempt,
        status: str,
        next_attempt_at: datetime | None = None,
        external_id: str = "",
    ) -> Submission:
        """Append the attempt and set the outcome (and when to try again)."""

    async def set_status(self, id: str, status: str, error: str = "") -> Submission:
        """An operator's or the engine's decision without an attempt (cancel, redrive)."""

    async def due(
        self, now: datetime, limit: int, adapters: Sequence[str] | None = None
    ) -> Sequence[Submission]:
        """Pending submissions, and failed ones whose next attempt is due, oldest first; of
        these adapters only, when named (one's backlog must not hide another's)."""
