"""The AMQP intake's handler over the embedded store, given deliveries as the bus wraps a
system's message: a write that committed before its process died is found, not made again;
another process's message in flight is waited for; the hub's own envelope is refused."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.base.envelope import Envelope
from hub.base.errors import RetryableError
from hub.bus.base import Delivery
from hub.bus.outside import wrap
from hub.intake.amqp import QUEUE, AmqpIntake
from hub.intake.answers import IntakeRefusedError
from hub.intake.plugin import PLUGIN
from hub.runtime import Runtime
from hub.settings import load_settings
from store.archive import PROCESSING, STORED, ArchiveQuery

SENDERS = {"EMR": {"users": ["emr"], "accepts": ["fhir.*"]}}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime(load_settings(data_dir=tmp_path, amqp_intake={"senders": SENDERS}))
    await runtime.start(consume=False)
    yield runtime
    await runtime.stop()


def intake(hub: Runtime) -> AmqpIntake:
    handler = PLUGIN.handlers["amqp-intake"](hub)
    assert isinstance(handler, AmqpIntake)
    return handler


def delivery(body: bytes, message_id: str, key: str = "fhir.Patient", **kw: Any) -> Delivery:
    properties: dict[str, Any] = {
        "content_type": "application/fhir+json",
        "message_id": message_id,
        "app_id": "EMR",
        "user_id": "emr",
        "reply_to": None,
        "correlation_id": None,
    }
    envelope = wrap(body, key, **(properties | kw))
    return Delivery(envelope, QUEUE, key, attempt=1, redelivered=False)


PATIENT = orjson.dumps({"resourceType": "Patient", "name": [{"text": "钱多多"}]})


async def test_a_write_made_before_a_crash_is_found_not_made_again(
    hub: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = hub.archive
    real_set_status = archive.set_status

    async def dies(*args: Any, **kwargs: Any) -> None:  # the process dies after the commit
        raise ConnectionError("gone")

    monkeypatch.setattr(archive, "set_status", dies)
    with pytest.raises(ConnectionError):
        await intake(hub)(delivery(PATIENT, "m-1"))
    (filed,) = await archive.search(ArchiveQuery(sender_application="EMR"))
    assert filed.status == PROCESSING
    assert len(await hub.resources.traced(filed.id, 10)) == 1

    monkeypatch.setattr(archive, "set_status", real_set_status)
    await intake(hub)(delivery(PATIENT, "m-1"))  # the broker's redelivery, same process
    assert len(await hub.resources.traced(filed.id, 10)) == 1  # not written twice
    again = await archive.get(filed.id)
    assert again.status == STORED
    assert "written before a restart" in again.ack
    assert again.resources == (f"Patient/{(await hub.resources.traced(filed.id, 1))[0].id}",)


async def test_another_processs_message_in_flight_is_retried_later(hub: Runtime) -> None:
    handler = intake(hub)
    other = type(handler.fhir)(**{**handler.fhir.__dict__, "claimant": "another-process"})
    elsewhere = AmqpIntake(handler.settings, handler.bus, handler.ingest, other)
    archive = hub.archive
    real_set_status = archive.set_status

    async def never(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the other process is slow")

    archive.set_status = never  # type: ignore[method-assign]
    try:
        with pytest.raises(ConnectionError):
            await elsewhere(delivery(PATIENT, "m-2"))
    finally:
        archive.set_status = real_set_status  # type: ignore[method-assign]
    # its claim is fresh: this process does not take the message over, it retries later
    with pytest.raises(RetryableError, match="is being processed by another-process"):
        await handler(delivery(PATIENT, "m-2"))


async def test_the_hubs_own_envelope_is_refused(hub: Runtime) -> None:
    own = Envelope(type="fhir.Patient", source="hub", content_type="application/json", body=b"{}")
    with pytest.raises(IntakeRefusedError, match="for systems' messages"):
        await intake(hub)(Delivery(own, QUEUE, "fhir.Patient", 1, False))


async def test_a_refusal_is_dead_lettered_even_when_its_reply_cannot_go(hub: Runtime) -> None:
    """The embedded bus has no outside systems to answer: the reply fails, the verdict holds."""
    with pytest.raises(IntakeRefusedError, match="does not publish as user mallory"):
        await intake(hub)(delivery(PATIENT, "m-3", user_id="mallory", reply_to="amq.gen-x"))
