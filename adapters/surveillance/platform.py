"""What the influenza (S5) and fever-clinic (S6) platforms share as adapters: the adapter
built from the layout's tables, the daily run over the days since the last one, the weekly ILI
summary, the day-by-day back-fill, and the strict simulator of the layout."""

import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from adapters.framework.backfill import BackfillRange, backfill_days, single_days
from adapters.framework.delivery import Courier
from adapters.framework.row_platform import (
    RowAdapter,
    RowPlatformConfig,
    Table,
    Tally,
    build_row_adapter,
)
from adapters.framework.simulated_tables import PlatformTable, TablePlatform, create_platform_app
from adapters.framework.transport import Transport
from adapters.surveillance.cases import monitored_visits
from adapters.surveillance.ili import ages_at_visits, ili_rows, week_rows
from adapters.surveillance.layout import Layout
from adapters.surveillance.period import load_period
from adapters.surveillance.report import CaseFinder, day_bounds, deliver, extract, patients_of
from adapters.surveillance.rules import CaseRules
from hub.base.hospital_time import HOSPITAL
from hub.base.logs import log_event
from hub.base.progress import ProgressReporter
from store.leases import JobStore
from store.resources import ResourceStore

log = logging.getLogger(__name__)
CATCH_UP_DAYS = 31  # after a longer outage, the back-fill command does the rest


def adapter_for(
    name: str, config: RowPlatformConfig, layout: Layout, transport: Transport | None = None
) -> RowAdapter:
    tables = [Table(kind, t.table, t.keys) for kind, t in layout.tables.items()]
    return build_row_adapter(name, config, tables, transport)


async def report_day(
    store: ResourceStore,
    courier: Courier,
    adapter: RowAdapter,
    rules: CaseRules,
    layout: Layout,
    day: date,
    finder: CaseFinder,
    with_ili: bool,
    tally: Tally | None = None,
) -> Tally:
    start, end = day_bounds(day)
    found = await extract(store, rules, start, end, finder, with_ili)
    return await deliver(courier, adapter.name, adapter.config, layout, found, tally)


def days_to_report(last_run: datetime | None, now: datetime) -> list[date]:
    """The days since the last run's (which reported the day before it) to yesterday."""
    yesterday = now.astimezone(HOSPITAL).date() - timedelta(days=1)
    first = yesterday if last_run is None else last_run.astimezone(HOSPITAL).date()
    first = max(first, yesterday - timedelta(days=CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((yesterday - first).days + 1)]


async def ili_week(store: ResourceStore, rules: CaseRules, monday: date) -> list[dict[str, object]]:
    """The week's ILI sums per clinic and band (Monday to Sunday)."""
    start, _ = day_bounds(monday)
    _, end = day_bounds(monday + timedelta(days=6))
    period = await load_period(store, rules, start, end)
    visits = monitored_visits(period, rules)
    subjects = {(v.encounter.get("subject") or {}).get("reference", "") for v in visits}
    ages = ages_at_visits(visits, await patients_of(store, subjects))
    return week_rows(ili_rows(visits, ages, rules.ili), monday)


def last_week(now: datetime | None = None) -> date:
    today = (now or datetime.now(UTC)).astimezone(HOSPITAL).date()
    return today - timedelta(days=today.weekday() + 7)


async def backfill_record_days(
    store: ResourceStore,
    courier: Courier,
    jobs: JobStore,
    adapter: RowAdapter,
    rules: CaseRules,
    layout: Layout,
    finder: CaseFinder,
    with_ili: bool,
    work: str,
    wanted: BackfillRange,
    progress: ProgressReporter,
    restart: bool,
) -> Tally:
    async def one_day(first: date, last: date) -> AsyncIterator[tuple[date, list[str]]]:
        tally = await report_day(store, courier, adapter, rules, layout, first, finder, with_ili)
        yield first, [o for o, n in tally.counts.items() for _ in range(n)]

    outcome = await backfill_days(jobs, work, wanted, single_days, one_day, progress, restart)
    log_event(log, "surveillance-backfilled", work=work, outcome=str(outcome))
    return outcome


def layout_simulator(org_code: str, config: RowPlatformConfig, layout: Layout) -> web.Application:
    tables = {t.table: PlatformTable(t.table, t.keys, t.columns) for t in layout.tables.values()}
    platform = TablePlatform(
        org_code=org_code,
        tables=tables,
        corrections=config.corrections,
        org_column=config.organisation_column,
        uploaded_column=config.uploaded_column,
        flag_column=config.flag_column,
    )
    return create_platform_app(platform, config.path)
