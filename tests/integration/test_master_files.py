"""The staff and location master files and a visit that names their doctor and bed, taken in
through the hub: one Practitioner and one set of Locations, found through the FHIR API, the
master file's content kept when a later message only names them."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.fhir_api import settle, start_api

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
SYSTEM = {"Authorization": "Bearer his-key", "Content-Type": "text/plain"}
EMR = {"Authorization": "Bearer emr-key"}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    client = await start_api(tmp_path, consume=True)
    yield client
    await client.close()


async def send(hub: TestClient, name: str) -> None:  # type: ignore[type-arg]
    response = await hub.post("/hl7v2", data=(CORPUS / name).read_bytes(), headers=SYSTEM)
    assert "MSA|AA|" in (await response.read()).decode()


async def test_a_visit_and_the_master_files_meet_on_the_same_resources(
    hub: TestClient,  # type: ignore[type-arg]
) -> None:
    await send(hub, "49-his-adt-a01-pv2-expected.hl7")  # names doctor 1402 and bed 12 first
    await settle(hub)
    await send(hub, "50-his-mfn-m02-staff.hl7")
    await send(hub, "51-his-mfn-m05-locations.hl7")
    await settle(hub)
    found = await (
        await hub.get("/fhir/Practitioner?identifier=urn:jianhu:sid:staff|1402", headers=EMR)
    ).json()
    (entry,) = found["entry"]
    doctor = entry["resource"]
    assert doctor["gender"] == "male"  # the staff file's content, over the visit's name only
    encounter = (await (await hub.get("/fhir/Encounter", headers=EMR)).json())["entry"][0]
    individual = encounter["resource"]["participant"][0]["individual"]
    assert individual["reference"] == f"Practitioner/{doctor['id']}"
    beds = await (await hub.get("/fhir/Location?name=普外科病区0506室12床", headers=EMR)).json()
    (bed,) = beds["entry"]
    assert bed["resource"]["status"] == "active"

    await send(hub, "49-his-adt-a01-pv2-expected.hl7")  # the same visit again
    await settle(hub)
    again = await (await hub.get(f"/fhir/Practitioner/{doctor['id']}", headers=EMR)).json()
    assert again["meta"]["versionId"] == doctor["meta"]["versionId"]  # a visit does not overwrite
