"""The lab service fed from the bus: FHIR API writes move a tube and raise critical values
like HL7 does, and a restart on the same data rebuilds the tubes in flight, the alerts people
took in charge and the critical values still open, from the store and the audit trail."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.lab.lifecycle import Stage
from hub.lab.service import LabService
from hub.web.keys import RUNTIME
from tests.integration.fhir_api import AUTH, Client, call, new_patient, settle, start_api

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
SYSTEM = {"Authorization": "Bearer his-key", "Content-Type": "text/plain"}
CRITICAL_K = "31-lis-oru-r01-critical-k-enhanced.hl7"  # 钾 6.8 mmol/L, 杨丽
CHEM_ORDER = "18-emr-oml-o21-chem-order.hl7"  # collected long ago, never received: overdue


def lab_of(api: Client) -> LabService:
    service: LabService | None = api.app[RUNTIME].lab
    assert service is not None
    return service


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat(timespec="seconds")


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Client]:
    api = await start_api(tmp_path, consume=True)
    yield api
    await api.close()


async def created(api: Client, resource: dict[str, Any]) -> str:
    status, body, _ = await call(api, "POST", resource["resourceType"], resource)
    assert status == 201, body
    return str(body["id"])


async def test_fhir_writes_move_the_tube(hub: Client) -> None:
    lab = lab_of(hub)
    patient = await created(hub, new_patient())
    order = await created(
        hub,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "priority": "stat",
            "code": {"coding": [{"system": "urn:jianhu:cs:lab-test", "code": "CBC"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "authoredOn": ago(minutes=50),
        },
    )
    tube: dict[str, Any] = {
        "resourceType": "Specimen",
        "subject": {"reference": f"Patient/{patient}"},
        "request": [{"reference": f"ServiceRequest/{order}"}],
        "collection": {"collectedDateTime": ago(minutes=40)},
    }
    tube["id"] = await created(hub, tube)

    def stage() -> Stage | None:
        track = lab.engine.track(tube["id"])
        return track.stage if track is not None else None

    await settle(hub)
    assert stage() is Stage.COLLECTED
    track = lab.engine.track(tube["id"])
    assert track is not None
    # what the tube's own resource does not say comes from its order, read from the store
    assert (track.test_group, track.priority.value) == ("血常规", "stat")

    status, _, _ = await call(
        hub, "PUT", f"Specimen/{tube['id']}", {**tube, "receivedTime": ago(minutes=10)}
    )
    assert status == 200
    await settle(hub)
    assert stage() is Stage.RECEIVED

    on_analyser = {
        "resourceType": "Task",
        "status": "in-progress",
        "intent": "order",
        "businessStatus": {"coding": [{"code": "上机"}]},
        "focus": {"reference": f"Specimen/{tube['id']}"},
        "lastModified": ago(minutes=5),
    }
    await created(hub, on_analyser)
    await settle(hub)
    assert stage() is Stage.IN_TEST

    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": "urn:jianhu:cs:lab-test", "code": "CBC"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "specimen": [{"reference": f"Specimen/{tube['id']}"}],
        "issued": ago(minutes=1),
    }
    await created(hub, report)
    await settle(hub)
    assert stage() is Stage.FINAL


async def test_a_critical_result_written_through_the_api_is_raised(hub: Client) -> None:
    lab = lab_of(hub)
    patient = await created(hub, new_patient(gender="male", birthDate="1960-04-02"))
    observation = await created(
        hub,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}], "text": "钾"},
            "subject": {"reference": f"Patient/{patient}"},
            "valueQuantity": {"value": 2.1, "unit": "mmol/L"},
        },
    )
    await settle(hub)
    assert lab.desk.for_observation(observation) is not None
    (shown,) = lab.view.overview()["critical"]
    assert shown["findings"][0]["value"] == "2.1 mmol/L"
    assert shown["patient"].endswith("*")  # masked, from the Patient the store holds


async def post_hl7(api: Client, name: str) -> None:
    response = await api.post("/hl7v2", data=(CORPUS / name).read_bytes(), headers=SYSTEM)
    text = await response.text()
    assert "MSA|AA|" in text or "MSA|CA|" in text, text  # CA: the sender asked for enhanced mode


async def test_a_restart_rebuilds_tubes_alerts_and_critical_values(tmp_path: Path) -> None:
    first = await start_api(tmp_path, consume=True)
    try:
        lab = lab_of(first)
        await post_hl7(first, CHEM_ORDER)
        await post_hl7(first, CRITICAL_K)
        await settle(first)
        assert lab.engine.alerts()
        assert lab.desk.open_alerts()
        overdue = lab.engine.alerts()[0]
        response = await first.post(
            f"/lab/alerts/{overdue.id}/ack",
            json={"by": "吴护士", "note": "已电话催送"},
            headers=AUTH,
        )
        assert response.status == 200, await response.text()
        (critical,) = lab.desk.open_alerts()
        in_flight = lab.engine.in_flight()
    finally:
        await first.close()

    second = await start_api(tmp_path, consume=True)
    try:
        lab = lab_of(second)
        # rebuilt before the first message of the queues, not fed again
        assert lab.engine.in_flight() == in_flight
        again = {alert.id: alert for alert in lab.engine.alerts()}[overdue.id]
        assert again.acknowledgement is not None
        assert (again.acknowledgement.by, again.acknowledgement.note) == ("吴护士", "已电话催送")
        (restored,) = lab.desk.open_alerts()
        # the audit trail records to the second
        assert (restored.id, restored.raised, restored.due) == (
            critical.id,
            critical.raised.replace(microsecond=0),
            critical.due.replace(microsecond=0),
        )
        (shown,) = lab.view.overview()["critical"]
        assert (shown["patient"], shown["ward"], shown["bed"]) == ("杨*", "普外科病区", "05")
    finally:
        await second.close()


async def test_a_restart_keeps_what_only_the_lis_hl7_said(tmp_path: Path) -> None:
    """The review of a result comes only from the ORU's OBR-25/OBR-32: a rebuild replays the
    archived HL7 with the store's resources, in the order they came, so a tube reviewed and
    reported before the restart does not come back as waiting for review."""
    first = await start_api(tmp_path, consume=True)
    try:
        lab = lab_of(first)
        await post_hl7(first, "17-his-oml-o21-flu-order.hl7")
        await post_hl7(first, "25-lis-oru-r01-flu-spm.hl7")
        await settle(first)
        assert len(lab.engine.completed) == 1
        (tube,) = lab.engine.completed
        assert lab.engine.in_flight() == 0
    finally:
        await first.close()
    second = await start_api(tmp_path, consume=True)
    try:
        lab = lab_of(second)
        assert lab.engine.in_flight() == 0
        track = lab.engine.track(tube)
        assert track is not None
        assert track.stage is Stage.REPORTED
    finally:
        await second.close()


async def test_a_restart_replays_in_the_order_things_came(tmp_path: Path) -> None:
    """Received (SSU^U03 over HL7), then the order revoked (FHIR API): the tube leaves the
    wall. A rebuild replays the archive and the store as one timeline, so the cancellation
    stays after the receipt and the tube does not come back."""
    received = (
        "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20260305083500||SSU^U03^SSU_U03|SSU0101|P|2.5\r"
        "EQU|LIS01|20260305083500\r"
        "SAC|||2603050301^HIS|||||REC\r"
    )
    first = await start_api(tmp_path, consume=True)
    try:
        lab = lab_of(first)
        await post_hl7(first, "17-his-oml-o21-flu-order.hl7")
        message = Message((CORPUS / "17-his-oml-o21-flu-order.hl7").read_bytes().decode())
        resources = normalize(message).resources
        order = next(r for r in resources if r["resourceType"] == "ServiceRequest")
        tube = next(r for r in resources if r["resourceType"] == "Specimen")
        sent = await first.post("/hl7v2", data=received.encode(), headers=SYSTEM)
        assert "|AA|" in await sent.text()
        await settle(first)
        assert _stage(lab, tube["id"]) is Stage.RECEIVED
        status, stored, _ = await call(first, "GET", f"ServiceRequest/{order['id']}")
        assert status == 200
        status, _, _ = await call(
            first, "PUT", f"ServiceRequest/{order['id']}", {**stored, "status": "revoked"}
        )
        assert status == 200
        await settle(first)
        assert lab.engine.track(tube["id"]) is None
    finally:
        await first.close()
    second = await start_api(tmp_path, consume=True)
    try:
        assert lab_of(second).engine.track(tube["id"]) is None
        assert lab_of(second).engine.in_flight() == 0
    finally:
        await second.close()


def _stage(lab: LabService, tube: str) -> Stage | None:
    track = lab.engine.track(tube)
    return track.stage if track is not None else None
