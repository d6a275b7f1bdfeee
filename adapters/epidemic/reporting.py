"""Reporting the indicators: which days, built from what, sent how.

Every 15 minutes the current day is counted again and sent when it changed (the ledger sends
the same row only once), with every past day that a change to the store since the last run
touched (a late result, a discharge recorded the next morning): those go as corrections, by
upsert or by revocation and a new row, as the platform is configured. A row our field checks
refuse is kept in the ledger as not sent, naming the fields."""

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import orjson

from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.daily import Bookkeeping, day_row, range_values
from adapters.epidemic.indicators import Catalogue
from adapters.epidemic.platform import ADAPTER, DAY_ROW
from adapters.framework.delivery import Courier
from adapters.framework.records import FieldRule, check
from adapters.framework.row_platform import Tally, send_row
from hub.base.errors import ResourceGoneError, ResourceNotFoundError
from hub.base.hospital_time import HOSPITAL, moment_of
from store.resources import ResourceStore

log = logging.getLogger(__name__)
PAGE = 1000


def field_table(catalogue: Catalogue, books: Bookkeeping) -> list[FieldRule]:
    """The row's field table: the bookkeeping columns and a whole, non-negative count per
    indicator (the upload time is stamped when sent, so it is not in the ledger's row)."""
    rules = [
        FieldRule(
            column=books.organisation_column,
            name="医疗机构代码",
            type="text",
            length=33,
            required=True,
        ),
        FieldRule(column=books.day_column, name="业务日期", type="date", required=True),
        FieldRule(column=books.flag_column, name="修改标志", type="code", codes=("0", "1")),
    ]
    rules += [
        FieldRule(
            column=i.column,
            name=i.name,
            type="integer" if i.kind != "constant" else "number",
            length=15,
            required=True,
            minimum=0,
        )
        for i in catalogue.indicators
    ]
    return rules


async def report_days(
    resources: ResourceStore,
    courier: Courier,
    config: EpidemicConfig,
    catalogue: Catalogue,
    days: Iterable[date],
    tally: Tally | None = None,
) -> Tally:
    """Count the days (a run of consecutive days in one search) and send each day's row."""
    tally = tally or Tally()
    for first, last in _runs(sorted(set(days))):
        values = await range_values(resources, catalogue, first, last)
        for day in sorted(values):
            tally.add(await send_day(courier, config, catalogue, day, values[day]))
    return tally


async def send_day(
    courier: Courier,
    config: EpidemicConfig,
    catalogue: Catalogue,
    day: date,
    values: dict[str, float],
) -> str:
    row = day_row(values, day, config.books)
    problems = check(row, field_table(catalogue, config.books))
    return await send_row(courier, ADAPTER, DAY_ROW, day.isoformat(), row, problems)


async def touched_days(
    resources: ResourceStore, since: datetime, until: datetime, first: date, today: date
) -> set[date]:
    """The days whose counts a change to the store in [since, until) may have moved: the day a
    visit began or ended and every day of a stay in between (the in-hospital count), the day a
    test was taken; for what a change moved or deleted, its days before the change as well
    (the version before it). Within [first, today]."""
    days: set[date] = set()
    for type_ in ("Encounter", "Observation"):
        cursor: str | None = None
        while True:
            page = await resources.history(type_, None, since, PAGE, cursor)
            for version in page.items:
                if version.last_updated >= until:
                    continue
                if version.body is not None:
                    days |= _days_of(orjson.loads(version.body), today)
                if version.version > 1:
                    days |= await _days_before(resources, type_, version.id, version.version, today)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return {day for day in days if first <= day <= today}


async def _days_before(
    resources: ResourceStore, type_: str, id_: str, version: int, today: date
) -> set[date]:
    try:
        prior = await resources.vread(type_, id_, version - 1)
    except (ResourceNotFoundError, ResourceGoneError):  # an older version purged
        return set()
    return _days_of(orjson.loads(prior.body), today) if prior.body is not None else set()


def _days_of(resource: dict[str, object], today: date) -> set[date]:
    period = resource.get("period")
    if isinstance(period, dict):
        began, ended = moment_of(period.get("start")), moment_of(period.get("end"))
        if began is None:
            return set()
        start = began.astimezone(HOSPITAL).date()
        end = ended.astimezone(HOSPITAL).date() if ended is not None else today
        end = min(end, today)
        return {start + timedelta(days=n) for n in range((end - start).days + 1)}
    taken = moment_of(resource.get("effectiveDateTime"))  # type: ignore[arg-type]
    return {taken.astimezone(HOSPITAL).date()} if taken is not None else set()


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
