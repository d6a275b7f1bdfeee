"""The back-fill: every day from ``backfill_since`` (2020-01-01 unless configured) to yesterday
counted and delivered, a month per search of the store.

Resumable: after each day the progress (``WorkProgress``, shown by ``GET /ops/progress``)
names it as the checkpoint; a run over the same range that finds an unfinished one carries on
after it. Idempotent: a day whose row the ledger holds already is not sent again, so a second
run over a finished range sends nothing (and changed days go as corrections). One back-fill at
a time: the run holds the job lease ``epidemic-backfill``."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.daily import range_values
from adapters.epidemic.indicators import Catalogue
from adapters.epidemic.reporting import send_day
from adapters.framework.delivery import Courier
from adapters.framework.row_platform import Tally
from hub.base.errors import JianhuError
from hub.base.progress import FINISHED, ProgressReporter
from hub.scheduler import default_holder, describe
from store.leases import JobStore
from store.resources import ResourceStore

WORK = "epidemic-backfill"
LEASE = timedelta(minutes=10)  # renewed after every month; a dead run blocks no longer


class BackfillBusyError(JianhuError):
    """Another back-fill holds the lease."""


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


async def backfill(
    resources: ResourceStore,
    courier: Courier,
    jobs: JobStore,
    config: EpidemicConfig,
    catalogue: Catalogue,
    wanted: BackfillRange,
    progress: ProgressReporter,
    restart: bool = False,
) -> Tally:
    holder = default_holder()
    if not await jobs.try_lease(WORK, holder, datetime.now(UTC), LEASE):
        raise BackfillBusyError("another back-fill of the epidemic indicators is running")
    try:
        start = await _resume_from(jobs, wanted, restart)
        done = (start - wanted.since).days
        checkpoint = (start - timedelta(days=1)).isoformat() if done else ""
        await progress.begin(wanted.days, done, checkpoint, wanted.detail)
        tally = Tally()
        try:
            for first, last in months(start, wanted.until):
                values = await range_values(resources, catalogue, first, last)
                for day in sorted(values):
                    tally.add(await send_day(courier, config, catalogue, day, values[day]))
                    await progress.advance(1, day.isoformat())
                await jobs.try_lease(WORK, holder, datetime.now(UTC), LEASE)  # renew
        except BaseException as exc:  # an error or an interruption (Ctrl-C): keep the place
            await progress.stop(f"{wanted.detail}: {describe(exc)}")
            raise
        await progress.finish(f"{wanted.detail}: {tally}")
        return tally
    finally:
        await jobs.release(WORK, holder)


async def _resume_from(jobs: JobStore, wanted: BackfillRange, restart: bool) -> date:
    """The first day to count: after the checkpoint of an unfinished run over the same range."""
    if restart:
        return wanted.since
    previous = await jobs.progress(WORK)
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
