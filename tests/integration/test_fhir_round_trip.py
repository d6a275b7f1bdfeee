"""Realistic examples of every supported type (Chinese names, identifiers and codes) go in
through the API and come back unchanged apart from ``meta``, and are found by their own search
parameters."""

import pytest

from fhir_profiles.search_params import SUPPORTED_TYPES
from tests.fixtures.all_types import EXAMPLES
from tests.integration.fhir_api import Client, call


def without_meta(resource: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in resource.items() if key != "meta"}


async def test_every_supported_type_round_trips_unchanged(api: Client) -> None:
    assert set(EXAMPLES) == set(SUPPORTED_TYPES)
    for type_, example in EXAMPLES.items():
        if type_ == "AuditEvent":  # the audit log takes creates only, with its own ids
            status, stored, _ = await call(api, "POST", type_, example)
            assert status == 201, stored
            status, read, _ = await call(api, "GET", f"{type_}/{stored['id']}")
            assert without_meta(read) == {**example, "id": stored["id"]}
            continue
        status, stored, _ = await call(api, "PUT", f"{type_}/{example['id']}", example)
        assert status == 201, (type_, stored)
        status, read, _ = await call(api, "GET", f"{type_}/{example['id']}")
        assert status == 200
        assert without_meta(read) == example, type_
        assert read["meta"]["versionId"] == "1"


@pytest.mark.parametrize("type_", ["Patient", "Encounter", "Observation", "Claim", "ChargeItem"])
async def test_examples_are_found_by_their_identifiers_and_references(
    api: Client, type_: str
) -> None:
    example = EXAMPLES[type_]
    await call(api, "PUT", f"{type_}/{example['id']}", example)
    for identifier in example.get("identifier", []):
        if "system" in identifier and "value" in identifier:
            query = f"{type_}?identifier={identifier['system']}|{identifier['value']}"
            _, bundle, _ = await call(api, "GET", query)
            assert [e["resource"]["id"] for e in bundle["entry"]] == [example["id"]], query
    patient = example.get("subject") or example.get("patient")
    if isinstance(patient, dict) and "reference" in patient:
        _, bundle, _ = await call(api, "GET", f"{type_}?patient={patient['reference']}")
        assert [e["resource"]["id"] for e in bundle["entry"]] == [example["id"]]
