"""Periodic and batch jobs (epidemic uploads every 15 minutes, task polling, the daily
reconciliation): when each is due, and running it in exactly one hub process at a time.

A job's next due time is computed from its last run as recorded in the store, so every process
agrees on it and a restart resumes where the hub left off. Before a run the scheduler takes the
job's lease in the store, then looks at the last run again (another process may have run the
same due time and released the lease in between), runs, records the run and releases. A lease
left by a process that died expires after the job's ``lease_ttl``; a long run renews its lease.

Schedules are a 5-field cron subset (``*``, lists, ranges, steps) read in Asia/Shanghai time,
or an interval (``every 15 minutes``) whose due times fall on multiples of the interval from a
local midnight, so 15 minutes means :00, :15, :30 and :45 in every process.
"""

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.base.logs import log_event
from hub.base.masking import mask_text
from hub.base.tasks import Passes, cancel, wait_event
from hub.schedule import Schedule
from store.leases import FAILED, OK, JobStore

log = logging.getLogger(__name__)


ON_TIME = timedelta(seconds=60)  # a due time passed by more is missed (see ``next_due``)
MAX_SLEEP_S = 60.0  # look at the clock and the store at least this often (clock changes)
LEASE_RECHECK = timedelta(seconds=10)  # after another holder had the lease: look again then
STORE_RETRY = timedelta(seconds=10)  # after the store failed
ERROR_CHARS = 300


@dataclass(frozen=True)
class Job:
    name: str
    schedule: Schedule
    run: Callable[[], Awaitable[None]]
    # How long a holder keeps the job when it stops renewing (dies): other processes wait at
    # most this long after a crash. The lease is renewed every third of it during a run.
    lease_ttl: timedelta = timedelta(minutes=5)
    catch_up: bool = False  # after downtime, run once for the missed due times

    def __post_init__(self) -> None:
        if self.lease_ttl <= timedelta(0):
            raise ValueError(f"job {self.name}: lease_ttl must be positive")


def next_due(job: Job, last_run: datetime | None, origin: datetime, now: datetime) -> datetime:
    """When ``job`` should run next; a time not after ``now`` means at once.

    Counted from its last run, whatever the outcome (a failed run is tried again at the next
    due time, not in a loop), else from ``origin``, when the scheduler started: a job that never
    ran has missed nothing. A due time passed by more than ON_TIME (downtime, or a run that
    overran) is missed: a catching-up job makes up all of them with one run at once, another job
    skips to its next due time."""
    base = last_run if last_run is not None else origin
    due = job.schedule.next_after(base)
    if due > now or job.catch_up:
        return due
    return job.schedule.next_after(max(base, now - ON_TIME))


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def describe(exc: BaseException) -> str:
    """What a failed run records and logs: class and message, identifiers masked, cut short
    (a job's error message could quote a record; the run history is not the place for it)."""
    return f"{type(exc).__name__}: {mask_text(str(exc))}"[:ERROR_CHARS]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        jobs: Iterable[Job],
        holder: str | None = None,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.jobs: Sequence[Job] = tuple(jobs)
        if len({job.name for job in self.jobs}) != len(self.jobs):
            raise ValueError("two jobs have the same name")
        self.holder = holder or default_holder()
        self._now = now
        self._origin = now()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._not_before: dict[str, datetime] = {}  # after a lease held elsewhere or a failure
        self._started: dict[str, datetime] = {}  # this process's latest start of each job
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._passes = Passes()  # of the background loop: what ``look_now`` waits on

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        """Stop scheduling and cancel the runs in progress; they are not recorded, and their
        leases are released, so their due time is still open to another process."""
        await cancel(self._task)
        self._task = None
        for task in list(self._running.values()):
            await cancel(task)

    def wake(self) -> None:
        """Look at the clock and the store now (after a clock change; tests move the clock)."""
        self._wake.set()

    async def tick(self) -> datetime:
        """Start each job that is due now in a task of its own (a long run delays no other
        job); returns when to look again."""
        now = self._now()
        wake_at = now + timedelta(seconds=MAX_SLEEP_S)
        for job in self.jobs:
            if job.name in self._running:
                continue  # its end wakes the loop
            due = await self._due(job, now)
            if due <= now:
                self._launch(job)
            else:
                wake_at = min(wake_at, due)
        return wake_at

    async def look_now(self) -> None:
        """Wake the background loop and return once it has looked at the clock and the store
        (a pass begun after this call) and the runs it started have ended: after a test moves
        the clock, what is due has run and what is not has not."""
        mark = self._passes.begun
        self.wake()
        await self._passes.after(mark)
        await self.idle()

    async def idle(self) -> None:
        """Until the runs started so far have ended."""
        if self._running:
            await asyncio.wait(list(self._running.values()))

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # before the tick: a wake during it is not lost
            self._passes.begin()
            try:
                wake_at = await self.tick()
            except Exception as exc:  # the store is failing now: look again soon
                log_event(log, "scheduler_failed", level=logging.ERROR, error=type(exc).__name__)
                wake_at = self._now() + STORE_RETRY
            await self._passes.end()
            delay = (wake_at - self._now()).total_seconds()
            await wait_event(self._wake, min(max(delay, 0.0), MAX_SLEEP_S))

    async def _due(self, job: Job, now: datetime) -> datetime:
        # The store's record, or this process's own start when recording it failed: a run
        # whose record was lost is not repeated here at once.
        recorded = await self.store.last_run(job.name)
        known = [t for t in (recorded, self._started.get(job.name)) if t is not None]
        due = next_due(job, max(known) if known else None, self._origin, now)
        return max(due, self._not_before.get(job.name, due))

    def _launch(self, job: Job) -> None:
        task = asyncio.create_task(self._attempt(job), name=f"job-{job.name}")
        self._running[job.name] = task
        task.add_done_callback(lambda _: self._ended(job.name))

    def _ended(self, name: str) -> None:
        self._running.pop(name, None)
        self._wake.set()

    async def _attempt(self, job: Job) -> None:
        now = self._now()
        try:
            if not await self.store.try_lease(job.name, self.holder, now, job.lease_ttl):
                self._not_before[job.name] = now + min(job.lease_ttl, LEASE_RECHECK)
                return
            self._not_before.pop(job.name, None)
            try:
                # Another process may have run this due time and released the lease between
                # our look at the last run and our lease: look again, under the lease.
                if await self._due(job, now) <= now:
                    await self._run(job)
            finally:
                await self.store.release(job.name, self.holder)
        except Exception as exc:
            log_event(
                log, "job_store_failed", level=logging.ERROR, job=job.name, error=describe(exc)
            )
            self._not_before[job.name] = self._now() + STORE_RETRY

    async def _run(self, job: Job) -> None:
        started = self._started[job.name] = self._now()
        renewal = asyncio.create_task(self._renew(job), name=f"job-{job.name}-lease")
        outcome, error = OK, ""
        try:
            await job.run()
        except Exception as exc:  # recorded; the job is tried again at its next due time
            outcome, error = FAILED, describe(exc)
        finally:
            await cancel(renewal)
        finished = self._now()
        await self.store.record_run(job.name, self.holder, started, finished, outcome, error)
        log_event(
            log,
            "job_ran",
            level=logging.INFO if outcome == OK else logging.WARNING,
            job=job.name,
            outcome=outcome,
            seconds=round((finished - started).total_seconds(), 3),
            error=error,
        )

    async def _renew(self, job: Job) -> None:
        while True:
            await asyncio.sleep(job.lease_ttl.total_seconds() / 3)
            try:
                kept = await self.store.try_lease(job.name, self.holder, self._now(), job.lease_ttl)
            except Exception as exc:  # the next renewal may get through before the expiry
                log_event(
                    log,
                    "job_lease_renewal_failed",
                    level=logging.ERROR,
                    job=job.name,
                    error=type(exc).__name__,
                )
                continue
            if not kept:  # we were stalled past the expiry: another process may run it too
                log_event(log, "job_lease_lost", level=logging.ERROR, job=job.name)
