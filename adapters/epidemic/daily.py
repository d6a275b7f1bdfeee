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
from hub.base.hospital_time import HOSPITAL
from store.listing import paged
from store.query import parse_search
from store.resources import ResourceStore

Json = dict[str, Any]
PAGE = 1000
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
    start = datetime.combine(day, time(), HOSPITAL)
    end = start + timedelta(days=1)
    encounters = [e async for e in _in_range(store, "Encounter", start, end)]
    observations: list[Json] | None = None
    values: dict[str, float] = {}
    for indicator in catalogue.indicators:
        if indicator.kind in ("tests", "positives"):
            if observations is None:
                observations = [o async for o in _in_range(store, "Observation", start, end)]
            values[indicator.column] = _tests(indicator, observations, start, end)
        elif indicator.kind == "constant":
            values[indicator.column] = indicator.value
        else:
            values[indicator.column] = _encounters(indicator, encounters, start, end)
    return values


def day_row(
    values: dict[str, float], day: date, books: Bookkeeping, uploaded: datetime, revoked: bool
) -> dict[str, Any]:
    """The platform's row: the indicators (whole numbers as integers) and the bookkeeping."""
    row: dict[str, Any] = {
        column: int(value) if float(value).is_integer() else value
        for column, value in values.items()
    }
    row[books.organisation_column] = books.organisation
    row[books.day_column] = day
    row[books.uploaded_column] = uploaded.astimezone(HOSPITAL).replace(tzinfo=None)
    row[books.flag_column] = "1" if revoked else "0"
    return row


async def _in_range(
    store: ResourceStore, type_: str, start: datetime, end: datetime
) -> AsyncIterator[Json]:
    """Current resources of a type whose date (Encounter.period, Observation.effective)
    overlaps the range, from the index: a stay still open overlaps every day since it began."""
    pairs = [("date", f"ge{start.isoformat()}"), ("date", f"lt{end.isoformat()}")]
    query = parse_search(type_, pairs)
    async for body in paged(lambda cursor: store.search(query, count=PAGE, cursor=cursor)):
        yield body


def _encounters(
    indicator: Indicator, encounters: Sequence[Json], start: datetime, end: datetime
) -> int:
    count = 0
    for encounter in encounters:
        if (encounter.get("class") or {}).get("code") not in indicator.classes:
            continue
        if encounter.get("status") in ("cancelled", "entered-in-error", "planned"):
            continue
        if indicator.locations and not _at(encounter, indicator.locations):
            continue
        period = encounter.get("period") or {}
        began, ended = _instant(period.get("start")), _instant(period.get("end"))
        if indicator.kind == "visits":
            count += began is not None and start <= began < end
        elif indicator.kind == "discharges":
            count += ended is not None and start <= ended < end
        else:  # in hospital at the day's end
            count += began is not None and began < end and (ended is None or ended >= end)
    return count


def _tests(
    indicator: Indicator, observations: Sequence[Json], start: datetime, end: datetime
) -> int:
    wanted = set(indicator.tests)
    count = 0
    for observation in observations:
        if observation.get("status") in ("cancelled", "entered-in-error", "registered"):
            continue
        codings = (observation.get("code") or {}).get("coding", [])
        if not any(
            f"{c.get('system', '')}|{c.get('code')}" in wanted or c.get("code") in wanted
            for c in codings
        ):
            continue
        taken = _instant(observation.get("effectiveDateTime"))
        if taken is None or not start <= taken < end:
            continue
        count += indicator.kind == "tests" or _positive(observation)
    return count


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


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # a date alone, or a local time: the hospital's
        moment = moment.replace(tzinfo=HOSPITAL)
    return moment
