"""One business day's indicators, counted on the clinical store, and the platform's row for it:
the indicator columns with the bookkeeping columns every regional table has (机构代码, 业务日期,
上传时间, 修改标志 XGBZ 0 正常 / 1 撤销). The day is Asia/Shanghai's; an Encounter counts on the day
its period starts (or ends, for discharges), an Observation on the day it was taken.

The store is searched by the day's range (its index), then each candidate is read for what the
index does not hold (where a visit started, how a test was read)."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from adapters.epidemic.indicators import Catalogue, Indicator
from hub.base.hospital_time import HOSPITAL, moment_of
from store.listing import paged
from store.query import parse_search
from store.resources import ResourceStore

Json = dict[str, Any]
PAGE = 5000  # a day's visits in two pages: each page is one query of the index
POSITIVE_FLAGS = frozenset({"POS", "A", "H", "AA", "HH", "DET"})
POSITIVE_CODES = frozenset({"POS", "260373001", "10828004", "阳性"})  # detected, positive


@dataclass(frozen=True)
class Bookkeeping:
    """The columns a platform's table has beside its indicators, and what goes in them."""

    organisation_column: str = "YLJGDM"  # 医疗机构代码
    organisation: str = ""
    day_column: str = "YWRQ"  # 业务日期
    uploaded_column: str = "TBRQ"  # 上传时间
    flag_column: str = "XGBZ"  # 修改标志: 0 正常, 1 撤销


async def day_values(store: ResourceStore, catalogue: Catalogue, day: date) -> dict[str, float]:
    """Each indicator's value for ``day``, by its column."""
    return (await range_values(store, catalogue, day, day))[day]


async def range_values(
    store: ResourceStore, catalogue: Catalogue, first: date, last: date
) -> dict[date, dict[str, float]]:
    """Each day's values from ``first`` to ``last`` (both included), from one search of the
    visits and one of the tests of the range: a back-fill counts a month at a time."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    counts = {day: dict.fromkeys(catalogue.columns, 0.0) for day in days}
    for indicator in catalogue.indicators:
        if indicator.kind == "constant":
            for values in counts.values():
                values[indicator.column] = indicator.value
    await _count(store, catalogue, counts, first, last)
    return counts


async def _count(
    store: ResourceStore,
    catalogue: Catalogue,
    counts: dict[date, dict[str, float]],
    first: date,
    last: date,
) -> None:
    by_kind = _by_kind(catalogue)
    visits, tests = _by_class(by_kind["visits"]), by_kind["tests"]
    # what began in the range, a day per search: a search's pages each sort what its window
    # holds, so a month's window would be sorted again for each of its pages
    day = first
    while day <= last and (visits or tests):
        start, end = _midnight(day), _midnight(day + timedelta(days=1))
        if visits:
            async for encounter in _began_within(store, "Encounter", start, end):
                _add(counts, encounter, visits, first, last)
        if tests:
            async for observation in _began_within(store, "Observation", start, end):
                for indicator in tests:
                    taken = _test_day(indicator, observation)
                    if taken is not None and first <= taken <= last:
                        counts[taken][indicator.column] += 1
        day += timedelta(days=1)
    if by_kind["stays"]:  # few: the whole range in one search
        classes = sorted({c for indicator in by_kind["stays"] for c in indicator.classes})
        start, end = _midnight(first), _midnight(last + timedelta(days=1))
        stays = _by_class(by_kind["stays"])
        async for encounter in _stays_overlapping(store, classes, start, end):
            _add(counts, encounter, stays, first, last)


def _by_class(indicators: list[Indicator]) -> dict[str, list[Indicator]]:
    """Encounter class -> the indicators that count it (most count one class or two)."""
    grouped: dict[str, list[Indicator]] = {}
    for indicator in indicators:
        for cls in indicator.classes:
            grouped.setdefault(cls, []).append(indicator)
    return grouped


def _add(
    counts: dict[date, dict[str, float]],
    encounter: Json,
    by_class: dict[str, list[Indicator]],
    first: date,
    last: date,
) -> None:
    indicators = by_class.get((encounter.get("class") or {}).get("code", ""), ())
    span = _span(encounter) if indicators else (None, None)  # read once for all
    for indicator in indicators:
        for day in _counted_days(indicator, encounter, span, first, last):
            counts[day][indicator.column] += 1


def day_row(values: dict[str, float], day: date, books: Bookkeeping) -> dict[str, Any]:
    """The platform's row, as the ledger keeps it: the indicators (whole numbers as integers),
    the institution, the business day, and the flag 0 (正常). The upload time is stamped when
    the row is sent; a revocation is this row with the flag 1."""
    row: dict[str, Any] = {
        column: int(value) if float(value).is_integer() else value
        for column, value in values.items()
    }
    row[books.organisation_column] = books.organisation
    row[books.day_column] = day.isoformat()
    row[books.flag_column] = "0"
    return row


def _by_kind(catalogue: Catalogue) -> dict[str, list[Indicator]]:
    """Visits (counted where they began), stays (discharges, in hospital: counted on every day
    they overlap) and tests: each group is one search of the store."""
    grouped: dict[str, list[Indicator]] = {"visits": [], "stays": [], "tests": []}
    for indicator in catalogue.indicators:
        if indicator.kind in ("tests", "positives"):
            grouped["tests"].append(indicator)
        elif indicator.kind == "visits":
            grouped["visits"].append(indicator)
        elif indicator.kind != "constant":
            grouped["stays"].append(indicator)
    return grouped


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), HOSPITAL)


def _day(moment: datetime) -> date:
    return moment.astimezone(HOSPITAL).date()


async def _began_within(
    store: ResourceStore, type_: str, start: datetime, end: datetime
) -> AsyncIterator[Json]:
    """Current resources of a type whose date (Encounter.period, Observation.effective) began
    in [start, end): ``sa`` the second before ``start`` with ``lt`` ``end``, which the date
    index answers in one seek however long the store's history."""
    before = (start - timedelta(seconds=1)).isoformat()
    async for body in _search(
        store, type_, [("date", f"sa{before}"), ("date", f"lt{end.isoformat()}")]
    ):
        yield body


async def _stays_overlapping(
    store: ResourceStore, classes: Sequence[str], start: datetime, end: datetime
) -> AsyncIterator[Json]:
    """Encounters of the classes (inpatient stays, observation stays) whose period overlaps
    [start, end), a stay still open included; the class drives the search (stays are a small
    part of the visits), the period is checked on each."""
    pairs = [("class", ",".join(classes)), ("date", f"ge{start.isoformat()}")]
    async for body in _search(store, "Encounter", [*pairs, ("date", f"lt{end.isoformat()}")]):
        yield body


async def _search(
    store: ResourceStore, type_: str, pairs: list[tuple[str, str]]
) -> AsyncIterator[Json]:
    query = parse_search(type_, pairs)
    async for body in paged(lambda cursor: store.search(query, count=PAGE, cursor=cursor)):
        yield body


def _encounter_days(indicator: Indicator, encounter: Json, first: date, last: date) -> list[date]:
    """The days of [first, last] on which the encounter counts for the indicator: the day it
    began (visits), the day it ended (discharges), or each day at whose end it was in
    progress (in hospital)."""
    if (encounter.get("class") or {}).get("code") not in indicator.classes:
        return []
    return _counted_days(indicator, encounter, _span(encounter), first, last)


Span = tuple[date | None, date | None]  # the hospital days the period began and ended on


def _span(encounter: Json) -> Span:
    period = encounter.get("period") or {}
    began, ended = moment_of(period.get("start")), moment_of(period.get("end"))
    return (_day(began) if began else None), (_day(ended) if ended else None)


def _counted_days(
    indicator: Indicator, encounter: Json, span: Span, first: date, last: date
) -> list[date]:
    if encounter.get("status") in ("cancelled", "entered-in-error", "planned"):
        return []
    if indicator.locations and not _at(encounter, indicator.locations):
        return []
    began, ended = span
    if indicator.kind == "visits":
        return [began] if began is not None and first <= began <= last else []
    if indicator.kind == "discharges":
        return [ended] if ended is not None and first <= ended <= last else []
    if began is None:
        return []
    # in progress at the end of day d: began before d's midnight and ended at or after it,
    # which is d from the day it began to the day before the day it ended
    since = max(first, began)
    until = last if ended is None else min(last, ended - timedelta(days=1))
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def _test_day(indicator: Indicator, observation: Json) -> date | None:
    """The day the test counts on for the indicator, or None when it does not count."""
    if observation.get("status") in ("cancelled", "entered-in-error", "registered"):
        return None
    codings = (observation.get("code") or {}).get("coding", [])
    wanted = indicator.tests
    if not any(
        f"{c.get('system', '')}|{c.get('code')}" in wanted or c.get("code") in wanted
        for c in codings
    ):
        return None
    taken = moment_of(observation.get("effectiveDateTime"))
    if taken is None or (indicator.kind == "positives" and not _positive(observation)):
        return None
    return _day(taken)


def _positive(observation: Json) -> bool:
    flags = {
        coding.get("code")
        for concept in observation.get("interpretation", [])
        for coding in concept.get("coding", [])
    }
    value = observation.get("valueCodeableConcept") or {}
    codes = {coding.get("code") for coding in value.get("coding", [])} | {value.get("text")}
    return bool(flags & POSITIVE_FLAGS or codes & POSITIVE_CODES)


def _at(encounter: Json, places: Sequence[str]) -> bool:
    """Whether the visit was at one of the clinics or wards, by their code or their name."""
    for entry in encounter.get("location", []):
        where = entry.get("location") or {}
        code = (where.get("identifier") or {}).get("value")
        if code in places or where.get("display") in places:
            return True
    return False
