"""The AMQP intake (docs/amqp.md) on the real RabbitMQ, fed by a client the hub does not contain
(pika): plain HL7 v2 and FHIR bodies, the sender checked, the message archived, stored and
answered on the sender's reply queue; a resend answered from the first copy; what the hub will
not take answered and dead-lettered with the reason."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pika.exceptions
import pytest

from hub.base.envelope import WIRE_CONTENT_TYPE, Envelope
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND, QueueSpec
from hub.intake.amqp import QUEUE
from hub.runtime import Runtime
from hub.settings import load_settings
from store.archive import REJECTED, STORED, ArchiveQuery
from store.resources import AuditFilter
from tests.broker import Broker
from tests.conftest import _delete_queues
from tests.integration.amqp_system import ER7, System, ask
from tests.integration.test_bus_contract import wait_until_async

DATA = Path(__file__).parents[1] / "data" / "hl7"
CBC = (DATA / "19-lis-oru-r01-cbc-corrected.hl7").read_bytes()
SENDERS = {
    "LIS": {"users": ["guest"], "accepts": ["hl7v2"]},
    "EMR": {
        "users": ["guest"],
        "accepts": ["fhir.*"],
        "scopes": "system/Patient.* system/Observation.*",
    },
}


def patient(name: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {"resourceType": "Patient", "name": [{"text": name}], "gender": "female", **extra}
    )


@pytest.fixture
async def hub(broker: Broker, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = load_settings(
        data_dir=tmp_path,
        amqp_url=broker.url,
        mllp_port=0,
        bus=BusSettings(retry_delays_s=(0.1,), handler_timeout_s=10),
        shutdown_grace_s=2,
        amqp_intake={"senders": SENDERS},
    )
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()
    await _delete_queues(broker.url, [route.queue for route in runtime.table.routes])


@pytest.fixture
async def emr(broker: Broker) -> AsyncIterator[System]:
    system = await asyncio.to_thread(System, broker.url, "EMR")
    yield system
    await asyncio.to_thread(system.close)


@pytest.fixture
async def lis(broker: Broker) -> AsyncIterator[System]:
    system = await asyncio.to_thread(System, broker.url, "LIS")
    yield system
    await asyncio.to_thread(system.close)


async def dead_reasons(hub: Runtime, count: int) -> list[str]:
    """The reasons of the intake's dead letters, once there are ``count`` of them (each is
    confirmed in the dead queue after its reply went out: looked at after each settlement)."""

    async def enough() -> bool:
        return len(await hub.bus.dead_letters(QUEUE)) >= count

    await hub.bus.handled_until(enough)
    return [dead.error for dead in await hub.bus.dead_letters(QUEUE)]


async def test_an_hl7_message_is_acknowledged_archived_and_stored(
    hub: Runtime, lis: System
) -> None:
    reply = await ask(lis, "hl7v2", CBC, "lis-1", content_type=ER7, correlation_id="ask-1")
    assert reply.properties.content_type.startswith(ER7)
    assert reply.properties.correlation_id == "ask-1"  # the asker's, as RPC expects
    assert b"MSA|AA|LIS20260305101244007" in reply.body
    archive_id = reply.headers["x-jianhu-archive-id"]
    archived = await hub.archive.get(archive_id)
    assert archived.sender_application == "LIS"
    assert archived.peer == "amqp:guest"

    async def stored() -> bool:
        return (await hub.archive.get(archive_id)).status == STORED

    await hub.bus.handled_until(stored)
    written = {v.type for v in await hub.resources.traced(archive_id, 100)}
    assert {"Patient", "Observation", "DiagnosticReport"} <= written


async def test_fhir_resources_and_transactions_are_stored_with_the_senders_scopes(
    hub: Runtime, emr: System
) -> None:
    created = await ask(emr, "fhir.Patient", patient("王芳"), "emr-1")
    assert created.headers["x-jianhu-status"] == "201"
    assert created.headers["x-jianhu-outcome"] == "accepted"
    body = orjson.loads(created.body)
    assert body["resourceType"] == "Patient"
    archive_id = created.headers["x-jianhu-archive-id"]
    assert body["meta"]["source"] == f"urn:jianhu:system:EMR#{archive_id}"

    # with an id: an update of that id
    updated = await ask(emr, "fhir.Patient", patient("王芳", id=body["id"], gender="male"), "emr-2")
    assert updated.headers["x-jianhu-status"] == "200"
    assert orjson.loads(updated.body)["meta"]["versionId"] == "2"

    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "urn:uuid:p1"},
        "valueQuantity": {"value": 5.6, "unit": "mmol/L"},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:p1",
                "resource": orjson.loads(patient("李雷")),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": observation, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    answered = await ask(emr, "fhir.Bundle", orjson.dumps(bundle), "emr-3")
    response = orjson.loads(answered.body)
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"][:3] for e in response["entry"]] == ["201", "201"]
    archived = await hub.archive.get(answered.headers["x-jianhu-archive-id"])
    assert archived.status == STORED
    assert [r.split("/")[0] for r in archived.resources] == ["Patient", "Observation"]

    # the sender's scopes hold, as a token's would over HTTP
    encounter = orjson.dumps({"resourceType": "Encounter", "status": "finished", "class": {}})
    refused = await ask(emr, "fhir.Encounter", encounter, "emr-4")
    assert refused.headers["x-jianhu-status"] == "403"
    assert refused.headers["x-jianhu-outcome"] == "refused"
    assert orjson.loads(refused.body)["resourceType"] == "OperationOutcome"

    assert hub.audit is not None
    await hub.audit.flush()  # every interaction audited, naming the sender
    audited = await hub.resources.audit.search(
        [AuditFilter("agent-name", "=", "amqp:EMR")], 20, None, False
    )
    assert len(audited.items) >= 4
    assert await dead_reasons(hub, 1) == ["no scope of this token allows Encounter (c)"]


async def test_a_resend_is_answered_from_the_first_copy_and_written_once(
    hub: Runtime, emr: System
) -> None:
    first = await ask(emr, "fhir.Patient", patient("赵敏"), "emr-once")
    again = await ask(emr, "fhir.Patient", patient("赵敏"), "emr-once")
    assert again.body == first.body
    assert again.headers["x-jianhu-archive-id"] == first.headers["x-jianhu-archive-id"]
    written = await hub.resources.traced(first.headers["x-jianhu-archive-id"], 10)
    assert len(written) == 1

    # the same message_id for other content: refused, never taken as the first
    other = await ask(emr, "fhir.Patient", patient("周芷若"), "emr-once")
    assert other.headers["x-jianhu-status"] == "409"
    assert (await hub.archive.get(other.headers["x-jianhu-archive-id"])).status == REJECTED
    assert "was used before for other content" in (await dead_reasons(hub, 1))[0]


async def test_what_is_not_taken_is_answered_and_dead_lettered_with_the_reason(
    hub: Runtime, broker: Broker, emr: System, lis: System
) -> None:
    # a sender nobody vouches for is not answered on a queue it merely names
    await asyncio.to_thread(emr.publish, "fhir.Patient", patient("甲"), "x-1", app_id="HACKER")
    await asyncio.to_thread(emr.publish, "fhir.Patient", patient("乙"), "x-2", user_id=None)
    asked = [
        await ask(emr, "hl7v2", CBC, "x-3", content_type=ER7),  # EMR may not send HL7
        await ask(emr, "fhir.Patient", b"{not json", "x-4"),
        await ask(emr, "fhir.Patient", patient("丙", gender="unknown-gender"), "x-5"),
        await ask(emr, "fhir.Observation", patient("丁"), "x-6"),
        await ask(emr, "fhir.Patient", patient("戊"), "x-7", content_type="text/plain"),
        await ask(emr, "fhir.Patient", patient("己"), ""),
    ]
    statuses = [reply.headers["x-jianhu-status"] for reply in asked]
    assert statuses == ["403", "400", "422", "400", "415", "400"]
    assert all(reply.headers["x-jianhu-outcome"] == "refused" for reply in asked)
    texts = [orjson.loads(reply.body)["issue"][0]["diagnostics"] for reply in asked]
    assert texts[0] == "EMR may not publish with key hl7v2"
    assert texts[1].startswith("not JSON")
    assert "gender" in texts[2]
    assert texts[3] == "routing key fhir.Observation but resourceType 'Patient'"
    assert "message_id is required" in texts[5]

    # an HL7 message its mapping cannot take: AE with ERR, as over MLLP in original mode
    identifiers = b"10067890^^^JHYY^PI~330683198509300572^^^CHN^NNCHN~88067890^^^JHYY^HC"
    no_patient_id = CBC.replace(b"PID|1||" + identifiers, b"PID|1||")
    assert no_patient_id != CBC
    ae = await ask(lis, "hl7v2", no_patient_id, "lis-bad", content_type=ER7)
    assert b"MSA|AE|" in ae.body
    assert b"\rERR|" in ae.body
    assert ae.headers["x-jianhu-outcome"] == "refused"

    reasons = await dead_reasons(hub, len(asked) + 3)
    assert "unknown sender (app_id HACKER)" in reasons
    assert "EMR must set user_id (its broker user, which RabbitMQ checks)" in reasons
    assert any(reason.startswith("AE: ") and "PID-3" in reason for reason in reasons)


async def test_the_broker_refuses_a_user_id_that_is_not_the_publishers(
    hub: Runtime, broker: Broker
) -> None:
    """What makes ``user_id`` proof of the sender: RabbitMQ closes the channel of a publisher
    that names another user, so the hub never sees the message."""
    forger = await asyncio.to_thread(System, broker.url, "EMR", "his")
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            await asyncio.to_thread(forger.publish, "fhir.Patient", patient("假"), "f-1")
        assert refused.value.reply_code == 406
    finally:
        await asyncio.to_thread(forger.close)


async def test_a_plain_message_on_a_hub_key_is_set_aside_unread(hub: Runtime, emr: System) -> None:
    """Only the intake takes systems' messages: one published with the hub's own key for the
    normalizer is dead-lettered there without being read, not normalized unchecked."""
    await asyncio.to_thread(emr.publish, "hl7v2.ORU.R01", CBC, "sneak", content_type=ER7)

    async def set_aside() -> bool:
        return len(await hub.bus.dead_letters("hl7v2.normalizer")) == 1

    await wait_until_async(set_aside)
    (dead,) = await hub.bus.dead_letters("hl7v2.normalizer")
    assert dead.envelope.type == "undecodable"
    assert dead.envelope.body == CBC  # kept whole for a person
    assert not await hub.archive.search(ArchiveQuery())  # never taken in


async def test_a_retired_binding_is_removed_when_the_queue_is_declared(
    hub: Runtime, broker: Broker, emr: System
) -> None:
    """RabbitMQ keeps every binding a queue was ever given: an upgraded hub unbinds what an
    earlier release bound (the normalizer's ``hl7v2.#`` took the systems' key ``hl7v2``)."""
    name = f"test.retired.{uuid.uuid4().hex[:8]}"
    spec = QueueSpec(name, INBOUND, ("test.now.*",), retired_bindings=("test.then.#",))
    await hub.bus.declare(QueueSpec(name, INBOUND, ("test.then.#",)))  # the earlier release
    await asyncio.to_thread(emr.publish, "test.then.x", b"{}", "r-1", reply=False)
    await hub.bus.declare(spec)  # the upgrade
    with pytest.raises(pika.exceptions.UnroutableError):
        await asyncio.to_thread(emr.publish, "test.then.x", b"{}", "r-2", reply=False)
    await asyncio.to_thread(emr.publish, "test.now.x", b"{}", "r-3", reply=False)
    await _delete_queues(broker.url, [name])


async def test_copies_of_one_message_at_once_are_written_once(hub: Runtime, emr: System) -> None:
    body = patient("孙悦", identifier=[{"system": "urn:test:card", "value": "C-77"}])
    for _ in range(5):  # as a publisher that did not see its confirms would
        await asyncio.to_thread(emr.publish, "fhir.Patient", body, "emr-same")
    replies = [await asyncio.to_thread(emr.reply) for _ in range(5)]
    assert {r.headers["x-jianhu-archive-id"] for r in replies} == {
        replies[0].headers["x-jianhu-archive-id"]
    }
    assert len({orjson.loads(r.body)["id"] for r in replies}) == 1
    written = await hub.resources.traced(replies[0].headers["x-jianhu-archive-id"], 10)
    assert len(written) == 1


async def test_hostile_bodies_and_headers_get_clear_refusals(
    hub: Runtime, broker: Broker, emr: System, lis: System
) -> None:
    deep: dict[str, Any] = {"url": "urn:x", "valueString": "x"}
    for _ in range(40):  # 80 levels: past the 64 the FHIR API takes, within JSON's limits
        deep = {"url": "urn:x", "extension": [deep]}
    nested = await ask(emr, "fhir.Patient", patient("深", extension=[deep]), "h-1")
    assert nested.headers["x-jianhu-status"] == "400"
    assert "nests deeper than 64" in orjson.loads(nested.body)["issue"][0]["diagnostics"]
    path = await ask(emr, "fhir.Patient", patient("径", id="p1/$everything"), "h-2")
    assert path.headers["x-jianhu-status"] == "400"
    # the hub's own headers on a system's message change nothing, and break no listing
    forged = await ask(
        lis, "hl7v2", CBC, "h-3", content_type=ER7,
        headers={"x-jianhu-attempt": "abc", "x-jianhu-routing-key": "fhir.Observation"},
    )  # fmt: skip
    assert b"MSA|AA|" in forged.body
    not_er7 = await ask(
        lis, "hl7v2", CBC.replace(b"LIS2026", b"LIS2027"), "h-4", content_type="application/json"
    )
    assert not_er7.headers["x-jianhu-status"] == "415"
    assert len(await dead_reasons(hub, 3)) == 3  # listable, whatever the messages carried


async def test_no_answer_goes_to_a_queue_the_sender_does_not_own(
    hub: Runtime, emr: System, lis: System
) -> None:
    # EMR names the LIS's reply queue: the message is taken, the answer is not sent there
    await asyncio.to_thread(
        emr.publish, "fhir.Patient", patient("冒"), "r-1", reply=False, reply_to=lis.replies
    )
    own = await ask(emr, "fhir.Patient", patient("真"), "r-2")  # handled after r-1
    assert own.headers["x-jianhu-outcome"] == "accepted"
    with pytest.raises(AssertionError, match="no reply"):
        await asyncio.to_thread(lis.reply, 1.0)


async def test_an_envelope_the_hub_did_not_publish_is_set_aside(
    hub: Runtime, broker: Broker
) -> None:
    """A broker user with rights to the hub's exchanges (a shared user) cannot pass an
    envelope of its own for one of the hub's: its user_id is not the hub's."""
    forger = await asyncio.to_thread(System, broker.url, "HIS", None)
    try:
        envelope = Envelope(
            type="hl7v2.ORU.R01", source="NOBODY", content_type=ER7, body=CBC
        ).to_json()
        props = pika.BasicProperties(content_type=WIRE_CONTENT_TYPE, delivery_mode=2)
        await asyncio.to_thread(
            forger.channel.basic_publish,
            "jianhu.requeue",
            "redrive.hl7v2.normalizer",
            envelope,
            props,
        )
    finally:
        await asyncio.to_thread(forger.close)

    async def set_aside() -> bool:
        return len(await hub.bus.dead_letters("hl7v2.normalizer")) == 1

    await wait_until_async(set_aside)
    assert not await hub.archive.search(ArchiveQuery())
