"""Back-filling a platform's history, day by day, as every reporting adapter needs it
(``jianhu report backfill NAME``): the days cut into spans (a month for counts that one search
answers, a day for record sets), each span's days delivered and reported to the progress.

Resumable: after each day the progress (``WorkProgress``, ``GET /ops/progress``) names it as
the checkpoint; a run over the same range that finds an unfinished one carries on after it.
Idempotent: the ledger does not send again what it holds, so a second run over a finished
range sends nothing (and changed days go as corrections). One back-fill of a platform at a
time: the run holds the job lease named after the work."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from adapters.framework.row_platform import Tally
from hub.base.errors import JianhuError
from hub.base.progress import FINISHED, ProgressReporter
from hub.scheduler import default_holder, describe
from store.leases import JobStore

LEASE = timedelta(minutes=2)  # renewed after every span; a killed run blocks no longer
# (first, last) -> the outcome of each of the span's days, as it is delivered
SpanRun = Callable[[date, date], AsyncIterator[tuple[date, list[str]]]]


class BackfillBusyError(JianhuError):
    """Another back-fill of the platform holds the lease."""


@dataclass(frozen=True)
class BackfillRange:
    since: date
    until: date  # included

    @property
    def detail(self) -> str:
        return f"{self.since.isoformat()}..{self.until.isoformat()}"

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1


async def backfill_days(
    jobs: JobStore,
    work: str,
    wanted: BackfillRange,
    spans: Callable[[date, date], list[tuple[date, date]]],
    run_span: SpanRun,
    progress: ProgressReporter,
    restart: bool = False,
) -> Tally:
    holder = default_holder()
    if not await jobs.try_lease(work, holder, datetime.now(UTC), LEASE):
        raise BackfillBusyError(f"another {work} is running")
    try:
        start = await _resume_from(jobs, work, wanted, restart)
        done = (start - wanted.since).days
        checkpoint = (start - timedelta(days=1)).isoformat() if done else ""
        await progress.begin(wanted.days, done, checkpoint, wanted.detail)
        tally = Tally()
        try:
            for first, last in spans(start, wanted.until):
                async for day, outcomes in run_span(first, last):
                    for outcome in outcomes:
                        tally.add(outcome)
                    await progress.advance(1, day.isoformat())
                await jobs.try_lease(work, holder, datetime.now(UTC), LEASE)  # renew
        except BaseException as exc:  # an error or an interruption (Ctrl-C): keep the place
            interrupted = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
            why = "interrupted" if interrupted else describe(exc)
            await progress.stop(f"{wanted.detail}: {why}")
            raise
        await progress.finish(f"{wanted.detail}: {tally}")
        return tally
    finally:
        await jobs.release(work, holder)


async def _resume_from(jobs: JobStore, work: str, wanted: BackfillRange, restart: bool) -> date:
    """The first day to do: after the checkpoint of an unfinished run over the same range."""
    if restart:
        return wanted.since
    previous = await jobs.progress(work)
    if not previous:
        return wanted.since
    last = previous[0]
    same_range = last.detail.split(":", 1)[0] == wanted.detail
    if last.state == FINISHED or not same_range or not last.checkpoint:
        return wanted.since
    return min(date.fromisoformat(last.checkpoint) + timedelta(days=1), wanted.until)


def months(first: date, last: date) -> list[tuple[date, date]]:
    """[first, last] cut at month ends."""
    spans = []
    while first <= last:
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        end = min(last, following - timedelta(days=1))
        spans.append((first, end))
        first = end + timedelta(days=1)
    return spans


def single_days(first: date, last: date) -> list[tuple[date, date]]:
    return [(first + timedelta(days=n),) * 2 for n in range((last - first).days + 1)]


def requested_range(since: date | None, until: date | None, default_since: date) -> BackfillRange:
    """The range a command asked for: from the platform's start to yesterday by default;
    never today (the schedule's) nor a range that ends before it begins."""
    from hub.base.hospital_time import HOSPITAL

    yesterday = datetime.now(HOSPITAL).date() - timedelta(days=1)
    wanted = BackfillRange(since or default_since, until or yesterday)
    if wanted.since > wanted.until:
        raise ValueError(f"nothing to back-fill: {wanted.since} is after {wanted.until}")
    if wanted.until > yesterday:
        raise ValueError("the back-fill ends yesterday at the latest: today is the schedule's")
    return wanted
