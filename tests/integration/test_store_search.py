"""Search on the store: every parameter kind, modifiers, prefixes and one level of chaining.

Runs through the store interface, so every backend meets the same expectations.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.base.errors import SearchError, VersionConflictError
from store.plan import Write, WriteMode
from store.query import parse_search
from store.resources import ResourceStore
from tests.fixtures.examples import CONDITION, ENCOUNTER, ID_CARD, OBSERVATION, PATIENT
from tests.stores import BACKENDS, open_store


@pytest.fixture(params=BACKENDS)
async def loaded(request: Any, tmp_path: Path) -> AsyncIterator[ResourceStore]:
    async with open_store(request.param, tmp_path) as resources:
        await _load(resources)
        yield resources


async def _load(resources: ResourceStore) -> None:
    await resources.update(PATIENT)
    await resources.update(
        {
            **PATIENT,
            "id": "p2",
            "gender": "female",
            "birthDate": "1985-06",
            "name": [{"text": "李四", "family": "李", "given": ["四"]}],
            "identifier": [{"system": ID_CARD, "value": "330602198506150021"}],
            "telecom": [],
            "address": [{"city": "杭州市"}],
        }
    )
    await resources.update(OBSERVATION)
    await resources.update(
        {
            **OBSERVATION,
            "id": "o2",
            "subject": {"reference": "Patient/p2"},
            "effectiveDateTime": "2026-10-01T08:00:00+08:00",
            "valueQuantity": {**OBSERVATION["valueQuantity"], "value": 98.5},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "血糖"},
        }
    )
    await resources.update(CONDITION)
    await resources.update(ENCOUNTER)


async def ids(resources: ResourceStore, type: str, query: str) -> list[str]:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&")] if query else []
    found = (await resources.search(parse_search(type, pairs))).items  # type: ignore[arg-type]
    return sorted(version.id for version in found)


async def test_token_forms(loaded: ResourceStore) -> None:
    assert await ids(loaded, "Patient", f"identifier={ID_CARD}|330602199001011231") == ["p1"]
    assert await ids(loaded, "Patient", "identifier=330602199001011231") == ["p1"]
    assert await ids(loaded, "Patient", "identifier=|330602199001011231") == []
    assert await ids(loaded, "Patient", f"identifier={ID_CARD}|") == ["p1", "p2"]
    assert await ids(loaded, "Patient", "gender=male,female") == ["p1", "p2"]
    assert await ids(loaded, "Patient", "gender:not=male") == ["p2"]
    assert await ids(loaded, "Observation", "code:text=血") == ["o1", "o2"]
    assert await ids(loaded, "Observation", "code:text=血糖") == ["o2"]
    assert await ids(loaded, "Patient", "_id=p2") == ["p2"]


async def test_string_forms(loaded: ResourceStore) -> None:
    assert await ids(loaded, "Patient", "name=张") == ["p1"]
    assert await ids(loaded, "Patient", "name:exact=张三") == ["p1"]
    assert await ids(loaded, "Patient", "name:exact=张") == ["p1"]  # the family part
    assert await ids(loaded, "Patient", "name:exact=张三丰") == []
    assert await ids(loaded, "Patient", "address:contains=鉴湖") == ["p1"]
    assert await ids(loaded, "Patient", "address-city=杭州") == ["p2"]


async def test_date_prefixes_and_precision(loaded: ResourceStore) -> None:
    assert await ids(loaded, "Patient", "birthdate=1990") == ["p1"]
    assert await ids(loaded, "Patient", "birthdate=1985-06") == ["p2"]
    assert await ids(loaded, "Patient", "birthdate=1985-06-15") == []  # a month is wider
    assert await ids(loaded, "Patient", "birthdate=lt1989") == ["p2"]
    assert await ids(loaded, "Patient", "birthdate=ge1990-01-01") == ["p1"]
    assert await ids(loaded, "Observation", "date=ge2026-11-01") == ["o1"]
    assert await ids(loaded, "Observation", "date=ge2026-10-01&date=lt2026-12-01") == ["o1", "o2"]
    assert await ids(loaded, "Condition", "onset-date=2026-11-22") == []  # period not within
    assert await ids(loaded, "Condition", "onset-date=ap2026-11-22") == ["c1"]
    assert await ids(loaded, "Condition", "onset-date=sa2026-11-19") == ["c1"]
    with pytest.raises(SearchError):
        await ids(loaded, "Patient", "birthdate=yesterday")


async def test_what_began_within_a_window(loaded: ResourceStore) -> None:
    """``sa`` with ``lt``: resources whose range began inside the window (the SQLite store
    answers it as one seek of the date index), whatever the order of the two clauses."""
    for n, start in enumerate(
        (
            "2026-12-02T23:59:59+08:00",
            "2026-12-03T00:00:00+08:00",
            "2026-12-03T23:59:59+08:00",
            "2026-12-04T00:00:00+08:00",
        )
    ):
        period = {"start": start, "end": "2026-12-05T00:00:00+08:00"}
        await loaded.update({**ENCOUNTER, "id": f"w{n}", "period": period})
    window = "date=sa2026-12-02T23:59:59%2B08:00&date=lt2026-12-04T00:00:00%2B08:00"
    assert await ids(loaded, "Encounter", window.replace("%2B", "+")) == ["w1", "w2"]
    reversed_ = "date=lt2026-12-04T00:00:00+08:00&date=sa2026-12-02T23:59:59+08:00"
    assert await ids(loaded, "Encounter", reversed_) == ["w1", "w2"]
    assert await ids(loaded, "Encounter", f"{reversed_}&status=finished") == ["w1", "w2"]
    assert await ids(loaded, "Encounter", f"{reversed_}&status=planned") == []


async def test_references_and_chains(loaded: ResourceStore) -> None:
    assert await ids(loaded, "Observation", "subject=Patient/p1") == ["o1"]
    assert await ids(loaded, "Observation", "patient=p2") == ["o2"]
    assert await ids(loaded, "Observation", "subject:Patient=p2") == ["o2"]
    assert await ids(loaded, "Observation", "subject=p1") == ["o1"]  # several target types
    chained = f"subject:Patient.identifier={ID_CARD}|330602198506150021"
    assert await ids(loaded, "Observation", chained) == ["o2"]
    assert await ids(loaded, "Observation", "patient.gender=male") == ["o1"]


async def test_quantities_and_missing(loaded: ResourceStore) -> None:
    assert await ids(loaded, "Observation", "value-quantity=132") == ["o1"]
    assert await ids(loaded, "Observation", "value-quantity=98.5") == ["o2"]
    assert await ids(loaded, "Observation", "value-quantity=gt100") == ["o1"]
    assert await ids(
        loaded, "Observation", "value-quantity=lt100|http://unitsofmeasure.org|g/L"
    ) == ["o2"]
    assert await ids(loaded, "Observation", "value-quantity=132||mg/dL") == []
    assert await ids(loaded, "Patient", "phone:missing=true") == ["p2"]
    assert await ids(loaded, "Patient", "phone:missing=false") == ["p1"]


async def test_combined_search_the_emr_runs(loaded: ResourceStore) -> None:
    query = "subject=Patient/p1&code=http://loinc.org|718-7&date=ge2026-11-01"
    assert await ids(loaded, "Observation", query) == ["o1"]


async def test_unknown_parameters_are_reported_not_applied(loaded: ResourceStore) -> None:
    query = parse_search("Patient", [("gender", "male"), ("shoe-size", "42"), ("_count", "5")])
    assert query.unknown == ("shoe-size",)
    assert [v.id for v in (await loaded.search(query)).items] == ["p1"]


async def test_deleted_resources_are_not_found_and_counted(loaded: ResourceStore) -> None:
    assert await loaded.count(parse_search("Patient", [])) == 2
    await loaded.delete("Patient", "p2")
    assert await ids(loaded, "Patient", "") == ["p1"]
    assert await loaded.count(parse_search("Patient", [])) == 1


async def test_bad_modifiers_are_refused(loaded: ResourceStore) -> None:
    with pytest.raises(SearchError):
        parse_search("Patient", [("gender:contains", "m")])
    with pytest.raises(SearchError):
        parse_search("Patient", [("phone:missing", "maybe")])
    with pytest.raises(SearchError):
        parse_search("Observation", [("subject.name", "张")])  # which type? several targets


async def test_composites_match_code_and_value_of_the_same_element(loaded: ResourceStore) -> None:
    assert await ids(loaded, "Observation", "code-value-quantity=http://loinc.org|718-7$gt100") == [
        "o1"
    ]
    assert await ids(loaded, "Observation", "code-value-quantity=718-7$lt100") == []
    assert await ids(loaded, "Observation", "code-value-quantity=2345-7$lt100") == ["o2"]
    # 8480-6 is a component: component-code-value-quantity sees it, code-value-quantity does not
    assert await ids(loaded, "Observation", "component-code-value-quantity=8480-6$120") == [
        "o1",
        "o2",
    ]
    assert await ids(loaded, "Observation", "code-value-quantity=8480-6$120") == []
    with pytest.raises(SearchError):
        await ids(loaded, "Observation", "code-value-quantity=718-7")  # the value is missing


async def test_sort_on_several_keys_both_directions(loaded: ResourceStore) -> None:
    async def order(query: str) -> list[str]:
        pairs = [tuple(part.split("=", 1)) for part in query.split("&")]
        page = await loaded.search(parse_search("Observation", pairs))  # type: ignore[arg-type]
        return [version.id for version in page.items]

    assert await order("_sort=date") == ["o2", "o1"]
    assert await order("_sort=-date") == ["o1", "o2"]
    assert await order("_sort=-value-quantity") == ["o1", "o2"]
    # same status, so code decides, compared as text: "2345-7" < "718-7"
    assert await order("_sort=status,code") == ["o2", "o1"]
    assert await order("_sort=status,-code") == ["o1", "o2"]
    with pytest.raises(SearchError):
        parse_search("Observation", [("_sort", "shoe-size")])


async def test_cursor_pages_are_stable_while_resources_are_added(loaded: ResourceStore) -> None:
    for number in range(7):
        await loaded.update({**PATIENT, "id": f"p-extra-{number}", "birthDate": f"20{number:02d}"})
    query = parse_search("Patient", [("_sort", "-birthdate")])
    first = await loaded.search(query, count=4)
    assert first.next_cursor is not None
    # a resource that sorts before the cursor appears on no later page: no duplicates, no gaps
    await loaded.update({**PATIENT, "id": "p-newest", "birthDate": "2030"})
    second = await loaded.search(query, count=4, cursor=first.next_cursor)
    assert second.next_cursor is not None
    third = await loaded.search(query, count=4, cursor=second.next_cursor)
    assert third.next_cursor is None
    seen = [v.id for page in (first, second, third) for v in page.items]
    assert len(seen) == len(set(seen)) == 9
    assert seen[:2] == ["p-extra-6", "p-extra-5"]
    assert seen[-2:] == ["p1", "p2"]  # 1990, then 1985-06
    with pytest.raises(SearchError):
        await loaded.search(query, cursor="not-a-cursor")


async def test_a_plan_commits_all_or_nothing(loaded: ResourceStore) -> None:
    failing = [
        Write.of(WriteMode.REPLACE, {**PATIENT, "id": "t1"}),
        Write.delete("Patient", "p2"),
        Write.of(WriteMode.REPLACE, {**PATIENT, "id": "p1"}, if_match=99),  # fails
    ]
    with pytest.raises(VersionConflictError):
        await loaded.apply(failing)
    assert await ids(loaded, "Patient", "") == ["p1", "p2"]
    await loaded.apply(failing[:2])
    assert await ids(loaded, "Patient", "") == ["p1", "t1"]
    found = await loaded.read_many([("Patient", "t1"), ("Patient", "p2"), ("Patient", "nope")])
    assert [version.id for version in found] == ["t1"]
