"""Times a person gives without an offset are the hospital's wall clock; times shown carry
+08:00."""

from datetime import UTC, datetime

import pytest

from hub.base.hospital_time import HOSPITAL, given, parse_given, shown


def test_a_time_without_offset_is_read_as_shaoxing_wall_clock() -> None:
    moment = parse_given("since", "2026-12-03T09:30:00")
    assert moment == datetime(2026, 12, 3, 1, 30, tzinfo=UTC)
    assert parse_given("since", "2026-12-03T01:30:00Z") == moment
    assert parse_given("since", "2026-12-03T09:30:00+08:00") == moment
    assert given(datetime(2026, 12, 3, 9, 30)) == moment
    assert given(moment) is moment


def test_a_time_is_shown_with_its_offset() -> None:
    assert shown(datetime(2026, 12, 3, 1, 30, tzinfo=UTC)) == "2026-12-03T09:30:00+08:00"
    assert shown(datetime(2026, 12, 3, 1, 30)) == "2026-12-03T09:30:00+08:00"  # naive is UTC
    assert datetime(2026, 7, 1, tzinfo=HOSPITAL).utcoffset() is not None


def test_a_time_that_is_not_iso_names_the_field() -> None:
    with pytest.raises(ValueError, match="until: '3 Dec' is not an ISO 8601 time"):
        parse_given("until", "3 Dec")
