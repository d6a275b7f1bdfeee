"""Schedules: the cron subset and intervals, read in Asia/Shanghai time, and when a job is next
due after its last run, downtime and failures."""

from datetime import UTC, datetime, timedelta

import pytest

from hub.base.hospital_time import HOSPITAL
from hub.schedule import Cron, Every, parse_schedule
from hub.scheduler import Job, next_due


def local(text: str) -> datetime:
    """A wall-clock time in Shaoxing."""
    return datetime.fromisoformat(text).replace(tzinfo=HOSPITAL)


def after(schedule: str, moment: str) -> datetime:
    return parse_schedule(schedule).next_after(local(moment)).astimezone(HOSPITAL)


async def nothing() -> None:
    return None


def job(schedule: str, catch_up: bool = False) -> Job:
    return Job("upload", parse_schedule(schedule), nothing, catch_up=catch_up)


@pytest.mark.parametrize(
    ("schedule", "moment", "due"),
    [
        ("*/15 * * * *", "2024-05-01 10:07", "2024-05-01 10:15"),
        ("*/15 * * * *", "2024-05-01 10:15", "2024-05-01 10:30"),  # strictly after
        ("*/15 * * * *", "2024-05-01 23:59:59", "2024-05-02 00:00"),
        ("0 2 * * *", "2024-05-01 01:59:59.999", "2024-05-01 02:00"),
        ("0 2 * * *", "2024-05-01 02:00:00.001", "2024-05-02 02:00"),
        ("0 0 1 * *", "2024-12-31 23:59", "2025-01-01 00:00"),  # year end
        ("0 0 31 * *", "2024-04-01 00:00", "2024-05-31 00:00"),  # April has no 31st
        ("0 0 29 2 *", "2023-03-01 00:00", "2024-02-29 00:00"),  # leap day
        ("0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00"),
        ("30 8 28-31 2 *", "2023-02-28 09:00", "2024-02-28 08:30"),
        ("0 9 * * 1-5", "2024-05-03 09:00", "2024-05-06 09:00"),  # Friday to Monday
        ("0 9 * * 0", "2024-05-01 00:00", "2024-05-05 09:00"),  # Sunday is 0...
        ("0 9 * * 7", "2024-05-01 00:00", "2024-05-05 09:00"),  # ...and 7
        ("0 8 1 * 1", "2024-04-02 00:00", "2024-04-08 08:00"),  # day OR weekday: a Monday
        ("0 8 1 * 1", "2024-04-29 09:00", "2024-05-01 08:00"),  # ...or the 1st
        ("0 8 */10 * 1", "2024-04-02 00:00", "2024-07-01 08:00"),  # a * field: both must match
        ("0 8 */10 * *", "2024-04-02 00:00", "2024-04-11 08:00"),  # 1, 11, 21, 31
        ("5/20 1,3 * * *", "2024-05-01 01:30", "2024-05-01 01:45"),
        ("0-30/10 12 * * *", "2024-05-01 12:21", "2024-05-01 12:30"),
        ("0 0 * 3-4,6 *", "2024-04-30 01:00", "2024-06-01 00:00"),
        ("every 15 minutes", "2024-05-01 10:07:30", "2024-05-01 10:15"),
        ("every: 15 minutes", "2024-05-01 10:15", "2024-05-01 10:30"),
        ("every 30 seconds", "2024-05-01 10:07:45", "2024-05-01 10:08"),
        ("Every 1 minute", "2024-05-01 10:07:45", "2024-05-01 10:08"),
        ("every 6 hours", "2024-05-01 01:00", "2024-05-01 06:00"),  # from a local midnight
        ("every 6 hours", "2024-05-01 18:00", "2024-05-02 00:00"),
    ],
)
def test_next_due_time(schedule: str, moment: str, due: str) -> None:
    assert after(schedule, moment) == local(due)


def test_cron_is_read_in_shanghai_time_whatever_the_zone_asked_in() -> None:
    daily = Cron.parse("0 2 * * *")
    # 01:59 in Shaoxing is 17:59 UTC the day before; 02:00 local is 18:00 UTC
    due = daily.next_after(datetime(2024, 4, 30, 17, 59, tzinfo=UTC))
    assert due == datetime(2024, 4, 30, 18, 0, tzinfo=UTC)
    assert due.astimezone(HOSPITAL).hour == 2
    # the last day of the month in UTC is already the first in Shaoxing
    monthly = Cron.parse("0 7 1 * *")
    assert monthly.next_after(datetime(2024, 4, 30, 22, 0, tzinfo=UTC)) == datetime(
        2024, 4, 30, 23, 0, tzinfo=UTC
    )
    utc = Cron.parse("0 2 * * *", zone=UTC)
    assert utc.next_after(datetime(2024, 4, 30, 17, 59, tzinfo=UTC)).hour == 2


def test_intervals_fall_on_the_same_times_whoever_computes_them() -> None:
    every = Every(timedelta(minutes=15))
    moments = [local("2024-05-01 10:00") + timedelta(seconds=s) for s in (1, 299, 600, 899)]
    assert {every.next_after(m) for m in moments} == {local("2024-05-01 10:15")}


@pytest.mark.parametrize(
    "text",
    [
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "a * * * *",
        "0 0 * JAN *",
        "0 0 30 2 *",  # never due
        "every 0 minutes",
    ],
)
def test_invalid_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"cron|interval"):
        parse_schedule(text)


def test_a_job_that_never_ran_is_due_at_its_first_time_after_the_start() -> None:
    start = local("2024-05-01 10:07")
    assert next_due(job("*/15 * * * *"), None, start, start) == local("2024-05-01 10:15")
    assert next_due(job("*/15 * * * *", catch_up=True), None, start, start) == local(
        "2024-05-01 10:15"
    )


def test_a_run_failed_or_not_makes_the_next_due_time() -> None:
    start, last = local("2024-05-01 08:00"), local("2024-05-01 10:15:02")
    assert next_due(job("*/15 * * * *"), last, start, last) == local("2024-05-01 10:30")


def test_a_due_time_a_little_late_still_runs() -> None:
    last, now = local("2024-05-01 10:00:01"), local("2024-05-01 10:15:40")
    assert next_due(job("*/15 * * * *"), last, last, now) == local("2024-05-01 10:15")


def test_after_downtime_a_catching_up_job_runs_once_at_once() -> None:
    last, now = local("2024-05-01 10:00:01"), local("2024-05-01 13:07")
    due = next_due(job("*/15 * * * *", catch_up=True), last, last, now)
    assert due == local("2024-05-01 10:15")  # passed: run now
    ran = now + timedelta(seconds=3)
    assert next_due(job("*/15 * * * *", catch_up=True), ran, last, ran) == local("2024-05-01 13:15")


def test_after_downtime_another_job_skips_to_its_next_due_time() -> None:
    last, now = local("2024-05-01 10:00:01"), local("2024-05-01 13:07")
    assert next_due(job("*/15 * * * *"), last, last, now) == local("2024-05-01 13:15")
    daily, now = job("0 2 * * *"), local("2024-05-02 09:00")
    assert next_due(daily, local("2024-05-01 02:00"), now, now) == local("2024-05-03 02:00")
    # a restart half a minute after the due time still runs it
    now = local("2024-05-02 02:00:30")
    assert next_due(daily, local("2024-05-01 02:00"), now, now) == local("2024-05-02 02:00")
