"""The MongoDB filters the query compiler writes, run against an in-memory MongoDB stand-in
(mongomock) over index documents of the test resources. The real server runs the store
contract tests whenever one is reachable; this checks the filter logic everywhere."""

from typing import Any

import mongomock
import pytest

from store.index import extract
from store.mongo_search import after, compile_clause, index_document, sort_document, sort_fields
from store.query import parse_search
from tests.fixtures.examples import CONDITION, ENCOUNTER, ID_CARD, OBSERVATION, PATIENT

P2 = {
    **PATIENT,
    "id": "p2",
    "gender": "female",
    "birthDate": "1985-06",
    "name": [{"text": "李四", "family": "李", "given": ["四"]}],
    "identifier": [{"system": ID_CARD, "value": "330602198506150021"}],
    "telecom": [],
    "address": [{"city": "杭州市"}],
}
O2 = {
    **OBSERVATION,
    "id": "o2",
    "subject": {"reference": "Patient/p2"},
    "effectiveDateTime": "2026-10-01T08:00:00+08:00",
    "valueQuantity": {**OBSERVATION["valueQuantity"], "value": 98.5},
    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "血糖"},
}


@pytest.fixture(scope="module")
def collection() -> Any:
    resources: Any = mongomock.MongoClient().db.resources
    for resource in (PATIENT, P2, OBSERVATION, O2, CONDITION, ENCOUNTER):
        rows = extract(resource)
        resources.insert_one(
            {
                "_id": f"{resource['resourceType']}/{resource['id']}",
                "type": resource["resourceType"],
                "id": resource["id"],
                "deleted": False,
                "ix": index_document(rows),
                "srt": sort_document(rows),
            }
        )
    return resources


def ids(collection: Any, type_: str, query: str, sort: bool = False) -> list[str]:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&")] if query else []
    parsed = parse_search(type_, pairs)  # type: ignore[arg-type]
    parts = [{"type": type_, "deleted": False}, *(compile_clause(c) for c in parsed.clauses)]
    found = collection.find({"$and": parts}).sort(sort_fields(parsed.sort))
    names = [doc["id"] for doc in found]
    return names if sort else sorted(names)


@pytest.mark.parametrize(
    ("type_", "query", "expected"),
    [
        ("Patient", f"identifier={ID_CARD}|330602199001011231", ["p1"]),
        ("Patient", "identifier=330602199001011231", ["p1"]),
        ("Patient", "identifier=|330602199001011231", []),
        ("Patient", "gender=male,female", ["p1", "p2"]),
        ("Patient", "gender:not=male", ["p2"]),
        ("Observation", "code:text=血", ["o1", "o2"]),
        ("Patient", "name=张", ["p1"]),
        ("Patient", "name:exact=张三丰", []),
        ("Patient", "address:contains=鉴湖", ["p1"]),
        ("Patient", "birthdate=1990", ["p1"]),
        ("Patient", "birthdate=1985-06-15", []),
        ("Patient", "birthdate=lt1989", ["p2"]),
        ("Observation", "date=ge2026-10-01&date=lt2026-12-01", ["o1", "o2"]),
        ("Condition", "onset-date=ap2026-11-22", ["c1"]),
        ("Observation", "subject=Patient/p1", ["o1"]),
        ("Observation", "subject=p1", ["o1"]),
        ("Observation", "value-quantity=gt100", ["o1"]),
        ("Observation", "value-quantity=98.5", ["o2"]),
        ("Observation", "value-quantity=lt100|http://unitsofmeasure.org|g/L", ["o2"]),
        ("Patient", "phone:missing=true", ["p2"]),
        ("Patient", "phone:missing=false", ["p1"]),
        ("Observation", "code-value-quantity=http://loinc.org|718-7$gt100", ["o1"]),
        ("Observation", "code-value-quantity=8480-6$120", []),
        ("Observation", "component-code-value-quantity=8480-6$120", ["o1", "o2"]),
    ],
)
def test_filters_select_what_the_sqlite_backend_selects(
    collection: Any, type_: str, query: str, expected: list[str]
) -> None:
    assert ids(collection, type_, query) == expected


def test_sort_and_keyset_cursor(collection: Any) -> None:
    assert ids(collection, "Observation", "_sort=date", sort=True) == ["o2", "o1"]
    assert ids(collection, "Observation", "_sort=-value-quantity", sort=True) == ["o1", "o2"]
    fields = sort_fields(parse_search("Observation", [("_sort", "date")]).sort)
    first = collection.find_one({"id": "o2"})
    last = [first["srt"]["date"]["lo"], "o2"]
    rest = collection.find({"$and": [{"type": "Observation"}, after(fields, last)]})
    assert [doc["id"] for doc in rest] == ["o1"]
