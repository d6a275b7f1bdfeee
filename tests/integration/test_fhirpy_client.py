"""An independent FHIR client from PyPI (fhirpy) drives CRUD, search, paging and a transaction
against the running server, so the API is checked against someone else's reading of the spec."""

from typing import Any

from fhirpy import AsyncFHIRClient

from tests.fixtures.examples import ID_CARD, OBSERVATION
from tests.integration.fhir_api import Client, new_patient


def fhir_client(api: Client) -> AsyncFHIRClient:
    return AsyncFHIRClient(str(api.make_url("/fhir")), authorization="Bearer emr-key")


async def test_crud_through_fhirpy(api: Client) -> None:
    client = fhir_client(api)
    patient = client.resource("Patient", **new_patient())
    await patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"
    fetched = await client.reference("Patient", patient.id).to_resource()
    assert fetched["name"][0]["text"] == "张三"
    fetched["gender"] = "female"
    await fetched.save()
    assert fetched["meta"]["versionId"] == "2"
    await fetched.delete()  # type: ignore[no-untyped-call]
    assert await client.resources("Patient").search(_id=patient.id).count() == 0


async def test_search_and_paging_through_fhirpy(api: Client) -> None:
    client = fhir_client(api)
    for number in range(7):
        await client.resource(
            "Patient", **new_patient(birthDate=f"19{70 + number}-01-01", identifier=[])
        ).save()
    born = client.resources("Patient").search(birthdate__ge="1973-01-01").sort("birthdate")
    every = await born.limit(2).fetch_all()  # follows the next links page by page
    assert [p["birthDate"] for p in every] == [f"19{y}-01-01" for y in range(73, 77)]
    assert await client.resources("Patient").search(birthdate__lt="1973").count() == 3
    first = await client.resources("Patient").search(identifier="nothing").first()
    assert first is None


async def test_transaction_through_fhirpy(api: Client) -> None:
    client = fhir_client(api)
    observation = {k: v for k, v in OBSERVATION.items() if k != "id"}
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5d4f7c8e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
                "resource": new_patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    **observation,
                    "subject": {"reference": "urn:uuid:5d4f7c8e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    result = await client.execute("", method="post", data=bundle)
    assert result["type"] == "transaction-response"
    patients = await client.resources("Patient").search(identifier=f"{ID_CARD}|").fetch_all()
    assert len(patients) == 1
    observations = await client.resources("Observation").search(subject=patients[0].id).fetch()
    assert len(observations) == 1
