"""The influenza rules as data (codes by prefix, words, bands), the ILI judgement of a visit,
and which days a nightly run reports."""

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from adapters.surveillance.cases import age_on, monitored_visits, positive
from adapters.surveillance.period import Period
from adapters.surveillance.platform import days_to_report, last_week
from adapters.surveillance.rules import case_rules, parse
from hub.base.hospital_time import HOSPITAL


def test_diagnosis_codes_match_what_extends_them() -> None:
    rules = case_rules()
    assert rules.coded_flu("J10.100x001")
    assert rules.coded_flu("j11")
    assert not rules.coded_flu("J06.900")


def test_age_bands_go_from_the_youngest_up() -> None:
    raw = {
        "diagnosis_codes": ["J10"],
        "ili": {
            "clinics": ["NKMZ"],
            "bands": [
                {"code": "2", "name": "old", "below": None},
                {"code": "1", "name": "x", "below": 5},
            ],
        },
    }
    with pytest.raises(ValidationError, match="youngest up"):
        parse(raw)
    ili = case_rules().ili
    assert [ili.band(age).code for age in (0, 4, 5, 14, 15, 59, 60, 101)] == list("11223455")


def test_age_is_in_whole_years_on_the_day() -> None:
    assert age_on("2020-12-05", date(2026, 12, 4)) == 5
    assert age_on("2020-12-04", date(2026, 12, 4)) == 6
    assert age_on("2020", date(2026, 12, 4)) == 6


def visit(temperature: float, complaint: str, clinic: str = "NKMZ") -> Period:
    start = datetime(2026, 12, 3, tzinfo=HOSPITAL)
    period = Period(start, datetime(2026, 12, 4, tzinfo=HOSPITAL))
    period.encounters["v"] = {
        "id": "v",
        "status": "finished",
        "period": {"start": "2026-12-03T09:00:00+08:00"},
        "reasonCode": [{"text": complaint}],
        "location": [{"location": {"identifier": {"value": clinic}}}],
    }
    period.observations["v"].append(
        {"code": {"coding": [{"code": "8310-5"}]}, "valueQuantity": {"value": temperature}}
    )
    return period


@pytest.mark.parametrize(
    ("temperature", "complaint", "clinic", "ili"),
    [
        (38.0, "发热伴咳嗽", "NKMZ", True),
        (39.1, "咽痛", "FRMZ", True),
        (37.9, "发热伴咳嗽", "NKMZ", False),  # not febrile enough
        (38.5, "腹痛", "NKMZ", False),  # no respiratory symptom
    ],
)
def test_an_ili_visit_is_febrile_with_cough_or_sore_throat(
    temperature: float, complaint: str, clinic: str, ili: bool
) -> None:
    (judged,) = monitored_visits(visit(temperature, complaint, clinic), case_rules())
    assert judged.ili is ili


def test_a_visit_outside_the_monitored_clinics_is_not_counted() -> None:
    assert monitored_visits(visit(39.0, "咳嗽", "GKMZ"), case_rules()) == []


def test_a_result_is_read_positive_by_its_flag_or_its_words() -> None:
    assert positive({"interpretation": [{"coding": [{"code": "POS"}]}]})
    assert positive({"valueCodeableConcept": {"text": "甲型流感病毒 阳性"}})
    assert not positive({"valueCodeableConcept": {"text": "未检出"}})
    assert not positive({"valueString": "阴性"})


def test_a_nightly_run_reports_the_days_since_the_last() -> None:
    now = datetime(2026, 12, 4, 2, 0, tzinfo=HOSPITAL)
    assert days_to_report(None, now) == [date(2026, 12, 3)]
    last = datetime(2026, 12, 1, 2, 0, tzinfo=HOSPITAL)  # then the hub was down two nights
    assert days_to_report(last, now) == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    assert len(days_to_report(long_ago, now)) == 31


def test_last_week_is_the_monday_before() -> None:
    assert last_week(datetime(2026, 12, 7, 6, 0, tzinfo=HOSPITAL)) == date(2026, 11, 30)  # Monday
    assert last_week(datetime(2026, 12, 13, 23, 0, tzinfo=HOSPITAL)) == date(2026, 11, 30)
