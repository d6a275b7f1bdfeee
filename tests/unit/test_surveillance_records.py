"""Records built from a case: a death only within its visit, the stay's days in hospital
days, and a front-end database URL that cannot be used refused when configured."""

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.framework.row_platform import RowPlatformConfig
from adapters.surveillance.cases import Case
from adapters.surveillance.records import CaseData, death_record, discharge_record

STAY: dict[str, Any] = {
    "id": "s1",
    "class": {"code": "IMP"},
    "period": {"start": "2026-12-01T17:00:00Z", "end": "2026-12-03T15:00:00+08:00"},
}


def data(patient: dict[str, Any], encounter: dict[str, Any] = STAY) -> CaseData:
    return CaseData(Case(encounter, ["diagnosis"]), {"id": "p1", **patient}, [])


def test_a_death_after_the_visit_is_not_its_death() -> None:
    assert death_record(data({"deceasedDateTime": "2026-12-09T08:00:00+08:00"})) is None
    died = death_record(data({"deceasedDateTime": "2026-12-03T14:00:00+08:00"}))
    assert died is not None
    assert died["death_time"] == "2026-12-03 14:00:00"
    disposed: dict[str, Any] = {
        **STAY,
        "hospitalization": {"dischargeDisposition": {"coding": [{"code": "5"}]}},
    }
    by_disposition = death_record(data({}, disposed))
    assert by_disposition is not None
    assert by_disposition["death_time"] == "2026-12-03 15:00:00"


def test_days_in_hospital_count_hospital_days() -> None:
    # admitted 01:00 on the 2nd in Shanghai (17:00 UTC the 1st), discharged on the 3rd
    assert discharge_record(data({}))["stay_days"] == 1


@pytest.mark.parametrize("url", ["foo://bar", "mssql+pyodbc://u:p@host/db", "not a url"])
def test_a_database_url_that_cannot_be_used_is_refused_when_configured(url: str) -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        RowPlatformConfig(organisation="ORG", transport="database", database_url=url)
