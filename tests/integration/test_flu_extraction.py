"""Influenza case finding and the report set on a generated season (``season.py``): what the
hub finds on the store matches what the generator decided, ground by ground, record by record,
ILI by clinic and age band."""

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from adapters.surveillance.report import day_bounds, extract
from adapters.surveillance.rules import case_rules
from adapters.surveillance.season import Season, generate
from store.plan import Write, WriteMode
from store.resources import ResourceStore
from store.sqlite import SqliteStore

FIRST = date(2026, 11, 2)  # a Monday


@pytest.fixture(scope="module")
def season() -> Season:
    return generate(FIRST, days=3, visits_a_day=40)


@pytest.fixture
async def store(tmp_path: Path, season: Season) -> AsyncIterator[ResourceStore]:
    opened = SqliteStore(tmp_path / "hub.sqlite3")
    await opened.open()
    resources = season.resources
    for i in range(0, len(resources), 500):
        batch = resources[i : i + 500]
        await opened.resources.apply([Write.of(WriteMode.REPLACE, r) for r in batch])
    yield opened.resources
    await opened.close()


async def test_the_season_is_found_as_the_generator_made_it(
    store: ResourceStore, season: Season
) -> None:
    start, _ = day_bounds(FIRST)
    _, end = day_bounds(FIRST + timedelta(days=9))  # every stay has ended
    found = await extract(store, case_rules(), start, end)
    expected = season.expected
    assert {r["record_id"] for r in found["case"]} == expected.cases
    assert {r["record_id"] for r in found["discharge"]} == expected.discharges
    assert {r["record_id"] for r in found["death"]} == expected.deaths
    assert len(found["summary"]) == expected.summaries
    assert len(found["medication"]) == expected.medications
    assert len(found["lab"]) == expected.labs
    grounds = {"1": "diagnosis", "3": "pathogen", "4": "drug"}
    counted = {
        name: sum(code in r["grounds"].split(",") for r in found["case"])
        for code, name in grounds.items()
    }
    assert counted == dict(expected.grounds)
    ili = {(r["day"], r["clinic"], r["band_code"]): r for r in found["ili"]}
    assert {k: r["visits"] for k, r in ili.items()} == dict(expected.monitored)
    assert {k: r["ili_cases"] for k, r in ili.items() if r["ili_cases"]} == {
        k: v for k, v in expected.ili.items() if v
    }


async def test_a_case_record_carries_the_patient_and_the_visit(
    store: ResourceStore, season: Season
) -> None:
    start, end = day_bounds(FIRST)
    found = await extract(store, case_rules(), start, end)
    record = found["case"][0]
    patient = next(
        r
        for r in season.resources
        if r["resourceType"] == "Patient"
        and f"Patient/{r['id']}"
        == next(
            e["subject"]["reference"]
            for e in season.resources
            if e["resourceType"] == "Encounter" and e["id"] == record["record_id"]
        )
    )
    assert record["id_number"] == patient["identifier"][0]["value"]
    assert record["sex"] == {"male": "1", "female": "2"}[patient["gender"]]
    assert record["visit_time"].startswith(FIRST.isoformat())
    assert record["diagnosis_code"].startswith(("J10", "J11")) or record["grounds"] != "1"
