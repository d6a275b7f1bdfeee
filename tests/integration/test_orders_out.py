"""Orders out with real sockets: a ServiceRequest the EMR writes through the FHIR API reaches
the LIS as ORM^O01 (a new order, then its cancel), an imaging one the PACS; the LIS's result,
echoing the placer number, files under the same ServiceRequest; an order the HIS placed over HL7
reaches the LIS as the HIS sent it, and is not sent a second time by the hub."""

from pathlib import Path
from typing import Any

import orjson

from hub.hl7v2.message import Message
from hub.web.keys import RUNTIME
from store.query import parse_search
from tests.integration.fhir_api import settle
from tests.integration.test_destinations import Site, oru, site_fixture  # noqa: F401 ("site")

EMR = {"Authorization": "Bearer emr-key", "Content-Type": "application/fhir+json"}
HIS_ORDER = Path(__file__).parents[1] / "data" / "hl7" / "14-his-orm-o01-lab-order.hl7"
SNOMED = "http://snomed.info/sct"


async def create(site: Site, body: dict[str, Any]) -> dict[str, Any]:
    response = await site.hub.post(
        f"/fhir/{body['resourceType']}", data=orjson.dumps(body), headers=EMR
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


def request(patient_id: str, kind: str, code: str, display: str) -> dict[str, Any]:
    category = {"laboratory": "108252007", "imaging": "363679005"}[kind]
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": "2026-12-03T09:30:00+08:00",
        "requester": {"display": "俞海峰"},
    }


async def test_an_order_goes_to_its_performer_and_its_result_comes_back_to_it(site: Site) -> None:
    await site.his.start(site.his_port)
    patient = await create(
        site,
        {
            "resourceType": "Patient",
            "identifier": [
                {
                    "type": {"coding": [{"code": "PI"}]},
                    "system": "urn:jianhu:sid:patient:jhyy",
                    "value": "P100",
                }
            ],
            "name": [{"family": "钱", "given": ["多多"]}],
            "gender": "female",
            "birthDate": "1990-05-01",
        },
    )
    response = await site.hub.post(
        "/fhir/ServiceRequest",
        data=orjson.dumps(request(patient["id"], "laboratory", "2345-7", "血糖")),
        headers=EMR,
    )
    glucose = dict(await response.json())
    asked_as = response.headers["X-Correlation-ID"]
    chest = await create(site, request(patient["id"], "imaging", "36643-5", "胸部X线"))
    await settle(site.hub)

    (order,) = site.lis.received
    message = Message(order)
    assert message.message_type[:2] == ("ORM", "O01")
    assert message.receiver[0] == "LIS"
    orc, obr, pid = message.first("ORC"), message.first("OBR"), message.first("PID")
    assert orc is not None
    assert obr is not None
    assert pid is not None
    assert (orc.value(1), orc.value(2, 1), orc.value(2, 2)) == ("NW", glucose["id"], "JIANHU")
    assert (obr.value(4, 1), obr.value(4, 2), obr.value(4, 3)) == ("2345-7", "血糖", "LN")
    assert (pid.value(3, 1), pid.value(5, 1), pid.value(5, 2), pid.value(8)) == (
        "P100",
        "钱",
        "多多",
        "F",
    )
    # the EMR's request is traced to the order the LIS got
    traced = await (
        await site.hub.get(f"/ops/trace/{asked_as}", headers={"Authorization": "Bearer ops-key"})
    ).json()
    (sent,) = traced["submissions"]
    assert sent["interface"] == "orders-to-lis"
    assert sent["status"] == "accepted"
    assert "⏎" in sent["answer"]  # the ACK's segments shown on one line
    (imaging,) = site.pacs.received
    assert Message(imaging).first("ORC").value(2, 1) == chest["id"]  # type: ignore[union-attr]

    # the LIS answers with a result that echoes the placer number
    result = oru("R100", "P100").replace("OBR|1|O-R100|", f"OBR|1|{glucose['id']}^JIANHU|")
    await site.send(result)
    await settle(site.hub)
    runtime = site.hub.app[RUNTIME]
    reports = await runtime.resources.search(parse_search("DiagnosticReport", []), count=10)
    (report,) = [orjson.loads(v.body or b"{}") for v in reports.items]
    assert [b["reference"] for b in report["basedOn"]] == [f"ServiceRequest/{glucose['id']}"]
    requests = await runtime.resources.search(parse_search("ServiceRequest", []), count=10)
    assert {v.id for v in requests.items} == {glucose["id"], chest["id"]}  # no second order

    # cancelled by the EMR: the LIS is told
    cancelled = dict(
        await (await site.hub.get(f"/fhir/ServiceRequest/{glucose['id']}", headers=EMR)).json()
    )
    cancelled["status"] = "revoked"
    response = await site.hub.put(
        f"/fhir/ServiceRequest/{glucose['id']}", data=orjson.dumps(cancelled), headers=EMR
    )
    assert response.status == 200
    await settle(site.hub)
    assert [Message(m).first("ORC").value(1) for m in site.lis.received] == ["NW", "CA"]  # type: ignore[union-attr]


async def test_an_order_the_his_placed_reaches_the_lis_once(site: Site) -> None:
    text = HIS_ORDER.read_bytes().decode("gb18030")
    await site.send(text)
    await settle(site.hub)
    orders = [m for m in site.lis.received if "ORM^O01" in m.split("\r")[0]]
    assert len(orders) == 1  # as the HIS sent it (MSH-5 LIS), not again by the hub
    assert Message(orders[0]).sender == ("HIS", "JHYY")


async def test_a_reactivated_order_is_new_a_deleted_one_cancelled_and_one_for_nobody_held(
    site: Site,
) -> None:
    patient = await create(site, {"resourceType": "Patient", "name": [{"text": "李四"}]})
    order = await create(site, request(patient["id"], "laboratory", "2345-7", "血糖"))
    path = f"/fhir/ServiceRequest/{order['id']}"
    for status in ("revoked", "active"):
        current = dict(await (await site.hub.get(path, headers=EMR)).json())
        current["status"] = status
        assert (await site.hub.put(path, data=orjson.dumps(current), headers=EMR)).status == 200
    assert (await site.hub.delete(path, headers=EMR)).status in (200, 204)
    await settle(site.hub)
    controls = [Message(m).first("ORC").value(1) for m in site.lis.received]  # type: ignore[union-attr]
    assert controls == ["NW", "CA", "NW", "CA"]  # placed, revoked, placed again, deleted

    nobody = await create(site, request("no-such-patient", "laboratory", "2345-7", "血糖"))
    await settle(site.hub)
    (dead,) = await site.hub.app[RUNTIME].bus.dead_letters("orders.out")
    assert dead.error.endswith("names no Patient in the store")  # ids may be partly masked
    assert dead.envelope.type == "fhir.ServiceRequest.created"
    assert nobody["id"][:8] in dead.error
