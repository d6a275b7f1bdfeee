"""One sender and control id is processed once and answered with one ACK: however many copies
arrive at the same moment on separate connections, after a crash left a message archived but
unpublished, or when a publish mark was lost and the message is published again. A control id
reused for other content is a new message, linked to the first (or refused, by configuration)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.bus.settings import BusSettings
from hub.hl7v2 import normalizer as normalizer_module
from hub.hl7v2.message import Message
from hub.hl7v2.mllp import frame
from hub.hl7v2.publishing import publish_archived
from hub.hl7v2.settings import Hl7Settings, ListenerSettings
from hub.runtime import Runtime
from hub.settings import load_settings
from store.archive import ArchivedMessage, ArchiveQuery

pytestmark = pytest.mark.fault  # part of the standing fault suite (-m fault)

ORU = (
    "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|{time}||ORU^R01^ORU_R01|{control}|P|2.5\r"
    "PID|1||{patient}^^^JHYY^PI||刘^洋||19850930|M\r"
    "OBR|1|{order}^HIS|{order}^LIS|CBC^血常规^L|||20260305100000\r"
    "OBX|1|NM|718-7^血红蛋白^LN||{value}|g/L|130-175||||F|||20260305101000\r"
)


def oru(control: str, value: str = "132", time: str = "20260305101244", n: int = 1) -> bytes:
    text = ORU.format(time=time, control=control, patient=f"P{n}", order=f"O{n}", value=value)
    return text.encode()


async def make_hub(tmp_path: Path, amqp_url: str = "", **hl7: Any) -> Runtime:
    listener = ListenerSettings(**hl7.pop("listener", {}))
    settings = load_settings(
        data_dir=tmp_path,
        amqp_url=amqp_url,
        mllp_port=0,
        http_host="127.0.0.1",
        hl7=Hl7Settings(listeners=(listener,), **hl7),
        bus=BusSettings(retry_delays_s=(0.1,), handler_timeout_s=10),
        shutdown_grace_s=2,
    )
    runtime = Runtime(settings)
    await runtime.start()
    return runtime


class Processed:
    """Counts what the normalizer really writes: each call of its ``persist`` is one
    processing of one message (a skipped resend never gets there)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = normalizer_module.__dict__["persist"]

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(normalizer_module, "persist", counted)


@pytest.fixture
def processed(monkeypatch: pytest.MonkeyPatch) -> Processed:
    return Processed(monkeypatch)


@pytest.fixture(params=["embedded", "rabbit"])
async def hub(request: Any, tmp_path: Path) -> AsyncIterator[Runtime]:
    amqp_url = request.getfixturevalue("broker").url if request.param == "rabbit" else ""
    runtime = await make_hub(tmp_path, amqp_url)
    yield runtime
    await runtime.stop()
    if amqp_url:
        from tests.conftest import _delete_queues

        await _delete_queues(amqp_url, [route.queue for route in runtime.table.routes])


async def send(port: int, raw: bytes) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame(raw))
        await writer.drain()
        data = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 20)
    finally:
        writer.close()
    return data[1:-2].decode()


def msa(ack: str) -> tuple[str, str]:
    segment = Message(ack).first("MSA")
    assert segment is not None
    return segment.value(1), segment.value(3)


async def normalized(runtime: Runtime, count: int) -> list[ArchivedMessage]:
    async def done() -> bool:
        found = await runtime.archive.search(ArchiveQuery(limit=100))
        return len(found) == count and all(m.status == "stored" for m in found)

    await runtime.bus.handled_until(done)
    return list(await runtime.archive.search(ArchiveQuery(limit=100)))


async def test_ten_copies_at_once_are_processed_once_with_one_ack(
    hub: Runtime, processed: Processed
) -> None:
    port = hub.listeners[0].port
    acks = await asyncio.gather(*(send(port, oru("C1")) for _ in range(10)))
    assert len(set(acks)) == 1  # the very same ACK text, control id and time included
    assert msa(acks[0])[0] == "AA"
    await normalized(hub, 1)
    again = await send(port, oru("C1", time="20260305111111"))  # a resend, stamped anew
    assert again == acks[0]
    assert len(await hub.archive.search(ArchiveQuery(limit=100))) == 1
    await hub.bus.close(grace_s=5)  # every delivery handled: nothing else can be processed
    print(
        f"\n[fault] 10 copies at once: {len(acks)} answered, {len(set(acks))} distinct ACK, "
        f"archived once, processed {processed.count} time(s)"
    )
    assert processed.count == 1


async def test_a_reused_control_id_with_other_content_is_a_new_linked_message(
    hub: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    port = hub.listeners[0].port
    caplog.set_level(logging.WARNING, "hub.hl7v2.ingest")
    first = await send(port, oru("C7", value="132"))
    second = await send(port, oru("C7", value="99", n=2))
    assert msa(first)[0] == msa(second)[0] == "AA"
    assert first != second
    messages = await normalized(hub, 2)
    earlier, later = sorted(messages, key=lambda m: m.received_at)
    assert later.duplicate_of == earlier.id
    assert any(r.getMessage() == "control_id_reused" for r in caplog.records)


async def test_a_sender_configured_so_gets_ae_for_a_reused_control_id(tmp_path: Path) -> None:
    runtime = await make_hub(tmp_path, listener={"refuse_reused_control_id": ("LIS",)})
    try:
        port = runtime.listeners[0].port
        assert msa(await send(port, oru("C9", value="132")))[0] == "AA"
        code, text = msa(await send(port, oru("C9", value="99", n=2)))
        assert code == "AE"
        assert "used before" in text
        rejected = await runtime.archive.search(ArchiveQuery(status="rejected"))
        assert len(rejected) == 1
        assert rejected[0].duplicate_of
    finally:
        await runtime.stop()


async def strand(runtime: Runtime, raw: bytes) -> ArchivedMessage:
    """What a crash between archive and publish leaves: a claim nobody will publish."""
    message = Message(raw.decode())
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    archived = ArchivedMessage(
        id=f"stranded-{message.control_id}",
        received_at=long_ago,
        sender_application="LIS",
        sender_facility="JHYY",
        peer="10.1.2.3",
        message_type="ORU^R01",
        control_id=message.control_id,
        charset="utf-8",
        raw=raw,
        text=raw.decode(),
        status="received",
        ack="MSH|^~\\&|JIANHU|JHYY|LIS|JHYY|20260305101245||ACK^R01^ACK|A1|P|2.5\rMSA|AA|S1",
        content_hash=message.content_hash(),
        claimed_by="a-process-that-died",
        claimed_at=long_ago,
    )
    await runtime.archive.add(archived)
    return archived


async def test_a_message_stranded_by_a_crash_is_published_at_start(tmp_path: Path) -> None:
    first = await make_hub(tmp_path)
    stranded = await strand(first, oru("S1"))
    await first.stop()
    second = await make_hub(tmp_path)  # the restart: its recovery finds the message
    try:
        (message,) = await normalized(second, 1)
        assert message.id == stranded.id
        port = second.listeners[0].port
        resent = await send(port, oru("S1"))  # the sender's resend gets the first ACK
        assert resent == stranded.ack
    finally:
        await second.stop()


async def test_stranded_messages_can_be_left_for_a_person(tmp_path: Path) -> None:
    runtime = await make_hub(tmp_path, stranded="flag")
    try:
        stranded = await strand(runtime, oru("S2"))
        assert await runtime.stranded.sweep() == 1  # type: ignore[union-attr]
        flagged = await runtime.archive.get(stranded.id)
        assert flagged.status == "stranded"
    finally:
        await runtime.stop()


async def test_a_resend_of_a_claim_held_too_long_is_taken_over(tmp_path: Path) -> None:
    """The claimant died before publishing; the sender's resend finds the stale claim, takes
    it over, publishes it and answers with the ACK the first copy would have had."""
    runtime = await make_hub(tmp_path, claim_grace_s=30)  # the sweep waits, the resend won't
    try:
        stranded = await strand(runtime, oru("S3"))
        resent = await send(runtime.listeners[0].port, oru("S3", time="20260305120000"))
        assert resent == stranded.ack
        (message,) = await normalized(runtime, 1)
        assert message.claimed_by == runtime.publisher.claimant
    finally:
        await runtime.stop()


async def test_an_attempt_published_twice_is_processed_once(
    hub: Runtime, processed: Processed
) -> None:
    """A publish mark lost in a crash: the recovery publishes the message again with the
    same attempt number, and the normalizer skips what it has already processed; a replay is
    a new attempt, and is processed."""
    ack = await send(hub.listeners[0].port, oru("D1"))
    assert msa(ack)[0] == "AA"
    (message,) = await normalized(hub, 1)
    await publish_archived(hub.bus, message, message.attempts)
    replayed = await hub.archive.new_attempt(message.id, hub.publisher.claimant)
    await publish_archived(hub.bus, message, replayed)

    async def second_attempt_stored() -> bool:
        current = await hub.archive.get(message.id)
        return current.attempts == 2 and current.status == "stored"

    await hub.bus.handled_until(second_attempt_stored)
    await hub.bus.close(grace_s=5)
    assert processed.count == 2  # the first attempt once, the replay once
