"""The hospital's time: Asia/Shanghai (UTC+08:00, no daylight saving since 1991).

Times are kept in UTC inside the hub. A time a person gives without an offset, on the command
line or to an API, means the hospital's wall clock, and every time shown carries its offset:
``2026-12-03T09:30:00+08:00``, never a bare or UTC time that a reader in Shaoxing must convert."""

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _shanghai() -> tzinfo:
    try:
        return ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:  # no tz database on the host: China has had no DST since 1991
        return timezone(timedelta(hours=8), "Asia/Shanghai")


HOSPITAL = _shanghai()


def given(moment: datetime) -> datetime:
    """A time as a person gave it: without an offset it is the hospital's wall clock."""
    return moment.replace(tzinfo=HOSPITAL) if moment.tzinfo is None else moment


def parse_given(name: str, text: str) -> datetime:
    """ISO 8601 text (``Z`` allowed) as ``given``; ValueError naming the field otherwise."""
    try:
        return given(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError as exc:
        raise ValueError(
            f"{name}: {text!r} is not an ISO 8601 time (without an offset it is read as "
            "Asia/Shanghai time)"
        ) from exc


def shown(moment: datetime) -> str:
    """A time for people and for the ops APIs: the hospital's wall clock with its offset.
    A naive time inside the hub is UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(HOSPITAL).isoformat()


def moment_of(text: str | None) -> datetime | None:
    """A FHIR dateTime as an aware moment (a date alone, or a time without an offset, is the
    hospital's); None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=HOSPITAL)
    return moment
