"""The FHIR API over real HTTP: CRUD, versions, conditional interactions, patch, errors.

Runs the whole hub app on a loopback port (embedded bus, SQLite store in a temporary folder).
"""

from typing import Any

import pytest

from tests.fixtures.examples import ID_CARD, OBSERVATION, PATIENT
from tests.integration.fhir_api import AUTH, FHIR_JSON, Client, call, count_of, new_patient


async def test_capability_statement_is_public_and_truthful(api: Client) -> None:
    response = await api.get("/fhir/metadata")
    assert response.status == 200
    statement = await response.json(content_type=None)
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert len(resources) == 46
    patient = resources["Patient"]
    names = {p["name"]: p["type"] for p in patient["searchParam"]}
    assert names["identifier"] == "token"
    assert names["birthdate"] == "date"
    assert "Observation:subject" in patient["searchRevInclude"]
    assert {o["name"] for o in patient["operation"]} == {"validate", "everything"}
    composite = {p["name"] for p in resources["Observation"]["searchParam"]}
    assert "code-value-quantity" in composite
    xml = await api.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert xml.status == 406


async def test_create_read_update_delete_with_versions(api: Client) -> None:
    status, created, headers = await call(api, "POST", "Patient", new_patient())
    assert status == 201
    id_ = created["id"]
    assert headers["Location"].endswith(f"/fhir/Patient/{id_}/_history/1")
    assert headers["ETag"] == 'W/"1"'
    assert created["meta"]["versionId"] == "1"
    assert created["name"] == PATIENT["name"]

    status, read, headers = await call(api, "GET", f"Patient/{id_}")
    assert (status, read) == (200, created)
    status, _, _ = await call(api, "GET", f"Patient/{id_}", **{"If-None-Match": 'W/"1"'})
    assert status == 304

    changed = {**read, "gender": "female"}
    status, updated, headers = await call(
        api, "PUT", f"Patient/{id_}", changed, **{"If-Match": 'W/"1"'}
    )
    assert (status, updated["meta"]["versionId"], updated["gender"]) == (200, "2", "female")
    status, outcome, _ = await call(api, "PUT", f"Patient/{id_}", changed, **{"If-Match": 'W/"1"'})
    assert status == 412
    assert outcome["resourceType"] == "OperationOutcome"

    status, old, _ = await call(api, "GET", f"Patient/{id_}/_history/1")
    assert (status, old["gender"]) == (200, "male")
    status, _, _ = await call(api, "DELETE", f"Patient/{id_}")
    assert status == 200
    status, gone, _ = await call(api, "GET", f"Patient/{id_}")
    assert (status, gone["issue"][0]["code"]) == (410, "deleted")
    status, history, _ = await call(api, "GET", f"Patient/{id_}/_history")
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
    status, _, _ = await call(api, "GET", "Patient/never-was")
    assert status == 404


async def test_update_as_create_and_prefer(api: Client) -> None:
    status, body, headers = await call(
        api, "PUT", "Patient/zs-001", new_patient(id="zs-001"), Prefer="return=minimal"
    )
    assert (status, body) == (201, None)
    assert headers["ETag"] == 'W/"1"'
    status, body, _ = await call(
        api, "PUT", "Patient/zs-001", new_patient(id="zs-001"), Prefer="return=OperationOutcome"
    )
    assert (status, body["resourceType"]) == (200, "OperationOutcome")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "Patient", {**PATIENT, "gender": "robot"}, 422, "code-invalid"),
        ("POST", "Patient", {**PATIENT, "birthDate": "1990-13-45"}, 422, "value"),
        (
            "POST",
            "Patient",
            {**PATIENT, "identifier": [{"system": ID_CARD, "value": "330602199001011234"}]},
            422,
            "value",
        ),
        ("POST", "Patient", {**PATIENT, "shoeSize": 42}, 422, "structure"),
        ("POST", "Patient", OBSERVATION, 400, "invalid"),
        ("PUT", "Patient/other-id", PATIENT, 400, "invalid"),
        ("POST", "Patient", [1, 2], 400, "invalid"),
        ("POST", "Unicorn", PATIENT, 404, "not-supported"),
        ("PUT", "Patient", PATIENT, 400, "invalid"),  # a conditional update without criteria
    ],
)
async def test_bad_input_gets_a_clear_error_and_writes_nothing(
    api: Client, method: str, path: str, body: Any, status: int, code: str
) -> None:
    got, outcome, _ = await call(api, method, path, body)
    assert got == status, outcome
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert await count_of(api, "Patient") == 0


async def test_malformed_oversized_and_xml_bodies(api: Client) -> None:
    response = await api.post(
        "/fhir/Patient", data=b"{not json", headers={**AUTH, "Content-Type": FHIR_JSON}
    )
    assert response.status == 400
    assert "not valid JSON" in (await response.json(content_type=None))["issue"][0]["diagnostics"]
    huge = new_patient(text={"status": "generated", "div": "<div>" + "x" * 70_000 + "</div>"})
    status, outcome, _ = await call(api, "POST", "Patient", huge)
    assert (status, outcome["issue"][0]["code"]) == (413, "too-costly")
    response = await api.post(
        "/fhir/Patient",
        data=b"<Patient/>",
        headers={**AUTH, "Content-Type": "application/fhir+xml"},
    )
    assert response.status == 415
    response = await api.get("/fhir/Patient", headers={**AUTH, "Accept": "application/fhir+xml"})
    assert response.status == 406
    assert await count_of(api, "Patient") == 0


async def test_tokens_and_roles(api: Client) -> None:
    response = await api.get("/fhir/Patient")
    assert response.status == 401
    assert (await response.json(content_type=None))["resourceType"] == "OperationOutcome"
    response = await api.get("/fhir/Patient", headers={"Authorization": "Bearer wall-key"})
    assert response.status == 403


async def test_conditional_create_update_and_delete(api: Client) -> None:
    criteria = f"identifier={ID_CARD}|330602199001011231"
    status, first, _ = await call(
        api, "POST", "Patient", new_patient(), **{"If-None-Exist": criteria}
    )
    assert status == 201
    status, again, _ = await call(
        api, "POST", "Patient", new_patient(), **{"If-None-Exist": criteria}
    )
    assert (status, again["id"]) == (200, first["id"])

    status, updated, _ = await call(api, "PUT", f"Patient?{criteria}", new_patient(gender="female"))
    assert (status, updated["id"], updated["meta"]["versionId"]) == (200, first["id"], "2")
    other = f"identifier={ID_CARD}|330602198506150021"
    body = new_patient(identifier=[{"system": ID_CARD, "value": "330602198506150021"}])
    status, made, _ = await call(api, "PUT", f"Patient?{other}", body)
    assert status == 201
    assert made["id"] != first["id"]

    status, outcome, _ = await call(api, "PUT", f"Patient?identifier={ID_CARD}|", new_patient())
    assert (status, outcome["issue"][0]["code"]) == (412, "multiple-matches")
    status, _, _ = await call(api, "DELETE", f"Patient?{other}")
    assert status == 200
    assert await count_of(api, "Patient") == 1


async def test_json_patch(api: Client) -> None:
    _, created, _ = await call(api, "POST", "Patient", new_patient())
    patch = [{"op": "replace", "path": "/gender", "value": "female"}]
    response = await api.patch(
        f"/fhir/Patient/{created['id']}",
        json=patch,
        headers={**AUTH, "Content-Type": "application/json-patch+json"},
    )
    assert response.status == 200
    patched = await response.json(content_type=None)
    assert (patched["gender"], patched["meta"]["versionId"]) == ("female", "2")
    for bad, status in (
        ([{"op": "replace", "path": "/id", "value": "x"}], 422),
        ([{"op": "replace", "path": "/gender", "value": "robot"}], 422),
        ([{"op": "test", "path": "/gender", "value": "male"}], 422),
    ):
        response = await api.patch(
            f"/fhir/Patient/{created['id']}",
            json=bad,
            headers={**AUTH, "Content-Type": "application/json-patch+json"},
        )
        assert response.status == status, await response.text()
    response = await api.patch(f"/fhir/Patient/{created['id']}", json=patch, headers=AUTH)
    assert response.status == 415
    _, current, _ = await call(api, "GET", f"Patient/{created['id']}")
    assert current["meta"]["versionId"] == "2"
