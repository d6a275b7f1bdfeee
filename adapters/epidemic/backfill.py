"""The S1 back-fill: every day from ``backfill_since`` (2020-01-01 unless configured) to
yesterday counted a month per search of the store and delivered (``framework/backfill.py``:
resumable, idempotent, one at a time, with its progress)."""

from collections.abc import AsyncIterator
from datetime import date

from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.daily import range_values
from adapters.epidemic.indicators import Catalogue
from adapters.epidemic.reporting import send_day
from adapters.framework.backfill import BackfillRange, backfill_days, months
from adapters.framework.delivery import Courier
from adapters.framework.row_platform import Tally
from hub.base.progress import ProgressReporter
from store.leases import JobStore
from store.resources import ResourceStore

WORK = "epidemic-backfill"


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
    async def month(first: date, last: date) -> AsyncIterator[tuple[date, list[str]]]:
        values = await range_values(resources, catalogue, first, last)
        for day in sorted(values):
            yield day, [await send_day(courier, config, catalogue, day, values[day])]

    return await backfill_days(jobs, WORK, wanted, months, month, progress, restart)
