"""When periodic jobs are due: a 5-field cron subset (``*``, lists, ranges, steps) read in
Asia/Shanghai time, or an interval (``every 15 minutes``) whose due times fall on multiples of
the interval from a local midnight, so 15 minutes means :00, :15, :30 and :45 in every process."""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol

from hub.base.hospital_time import HOSPITAL

LOOKAHEAD_YEARS = 50  # "0 0 29 2 1" (29 February on a Monday) recurs within 40 years


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment`` (both timezone-aware)."""


@dataclass(frozen=True)
class Every:
    period: timedelta
    zone: tzinfo = HOSPITAL

    def __post_init__(self) -> None:
        if self.period <= timedelta(0):
            raise ValueError("an interval must be positive")

    def next_after(self, moment: datetime) -> datetime:
        # Anchored on a local midnight, in UTC so that the arithmetic counts elapsed time. An
        # interval that does not divide a day (7 hours) falls on other hours each day.
        anchor = datetime(2000, 1, 1, tzinfo=self.zone).astimezone(UTC)
        return anchor + (((moment - anchor) // self.period) + 1) * self.period


_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday, as in cron
    # Cron's rule for the two day fields: when both are restricted (neither begins with *) a
    # day matches either one ("0 8 1 * 1": the 1st and every Monday), otherwise it must match both.
    either_day: bool
    zone: tzinfo = HOSPITAL
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str, zone: tzinfo = HOSPITAL) -> "Cron":
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"cron {text!r}: 5 fields (minute hour day month weekday) expected")
        minute, hour, day, month, weekday = fields
        cron = cls(
            minutes=_field(minute, 0, 59, "minute"),
            hours=_field(hour, 0, 23, "hour"),
            days=_field(day, 1, 31, "day"),
            months=_field(month, 1, 12, "month"),
            weekdays=frozenset(d % 7 for d in _field(weekday, 0, 7, "weekday")),
            either_day=not (day.startswith("*") or weekday.startswith("*")),
            zone=zone,
            text=text,
        )
        if not cron.either_day and not any(
            d <= _MAX_DAYS[m - 1] for m in cron.months for d in cron.days
        ):
            raise ValueError(f"cron {text!r}: no month has that day")
        return cron

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        t = local.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        while t.year <= local.year + LOOKAHEAD_YEARS:
            if t.month not in self.months:  # the 1st of the next month
                t = datetime(t.year + t.month // 12, t.month % 12 + 1, 1)
            elif not self._day_matches(t.date()):
                t = datetime.combine(t.date() + timedelta(days=1), datetime.min.time())
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                due = t.replace(tzinfo=self.zone).astimezone(UTC)
                if due > moment:  # a wall time repeated by a DST change in other zones
                    return due
                t += timedelta(minutes=1)
        raise ValueError(f"cron {self.text!r} is not due within {LOOKAHEAD_YEARS} years")

    def _day_matches(self, day: date) -> bool:
        by_date = day.day in self.days
        by_weekday = day.isoweekday() % 7 in self.weekdays
        return (by_date or by_weekday) if self.either_day else (by_date and by_weekday)


def _field(text: str, low: int, high: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, slash, step_text = part.partition("/")
        try:
            step = int(step_text) if slash else 1
            if span == "*":
                start, end = low, high
            elif "-" in span:
                first, last = span.split("-", 1)
                start, end = int(first), int(last)
            else:  # "5/10" is 5, 15, 25...: from 5 to the field's end
                start = int(span)
                end = high if slash else start
        except ValueError:
            raise ValueError(f"cron {name} {text!r}: numbers, *, -, / and , only") from None
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"cron {name} {text!r}: out of {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


_EVERY = re.compile(r"every:?\s*(\d+)\s*(second|minute|hour)s?", re.IGNORECASE)


def parse_schedule(text: str, zone: tzinfo = HOSPITAL) -> Schedule:
    """``*/15 * * * *`` (cron, local time) or ``every 15 minutes`` / ``every: 30 seconds``."""
    if every := _EVERY.fullmatch(text.strip()):
        count, unit = int(every.group(1)), every.group(2).lower()
        return Every(timedelta(**{f"{unit}s": count}), zone)
    return Cron.parse(text, zone)
