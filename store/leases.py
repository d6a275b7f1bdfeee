"""What the scheduler keeps in the store for its periodic and batch jobs: a lease per job, so
that of several hub processes only one runs a job at a time, and the job's recent runs, from
which every process computes when the job is next due.

A lease is a holder and an expiry: a holder that dies without releasing blocks the job only
until the expiry, and a holder renews its lease (takes it again) while a long run goes on."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from hub.base.progress import WorkProgress

OK, FAILED = "ok", "failed"
HISTORY = 50  # runs kept per job: enough for an operator to see a pattern of failures


@dataclass(frozen=True)
class JobRun:
    job: str
    holder: str
    started: datetime
    finished: datetime
    outcome: str  # OK or FAILED
    error: str = ""  # the exception's class and (masked) message; never patient data


class JobStore(Protocol):
    async def try_lease(self, job: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take the job's lease until ``now + ttl`` if it is free, expired or already the
        holder's (a renewal), in one atomic step; False when another holder has it."""

    async def release(self, job: str, holder: str) -> None:
        """Free the lease, if the holder still has it."""

    async def last_run(self, job: str) -> datetime | None:
        """When the latest recorded run of the job started, whatever its outcome."""

    async def record_run(
        self,
        job: str,
        holder: str,
        started: datetime,
        finished: datetime,
        outcome: str,
        error: str = "",
    ) -> None:
        """Store a finished run durably; only the latest ``HISTORY`` runs are kept."""

    async def runs(self, job: str, limit: int = HISTORY) -> Sequence[JobRun]:
        """The job's recorded runs, the latest first."""

    async def save_progress(self, progress: WorkProgress) -> None:
        """Replace what is known of the work's progress."""

    async def progress(self, work: str | None = None) -> Sequence[WorkProgress]:
        """The progress of one piece of work (empty when it never ran), or of every one,
        the latest updated first."""
