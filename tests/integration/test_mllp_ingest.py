"""HL7 v2 over MLLP end to end, on real sockets, on the embedded bus and on the real RabbitMQ:
python-hl7's MLLP client (not ours) sends the corpus, the ACKs say what the hub did, the
archive keeps every message, and the normalizer writes FHIR resources without duplicates."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp
import pytest

from hub.bus.settings import BusSettings
from hub.hl7v2.message import Message
from hub.hl7v2.mllp import frame
from hub.hl7v2.settings import Hl7Settings, ListenerSettings
from hub.runtime import Runtime
from hub.settings import load_settings
from store.archive import ArchiveQuery
from store.query import parse_search

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))


@pytest.fixture(params=["embedded", "rabbit"])
async def hub(request: Any, tmp_path: Path) -> AsyncIterator[Runtime]:
    amqp_url = request.getfixturevalue("broker").url if request.param == "rabbit" else ""
    listener = ListenerSettings(
        charset="utf-8", fallback_charset="gb18030", max_message_bytes=64_000
    )
    settings = load_settings(
        data_dir=tmp_path,
        amqp_url=amqp_url,
        mllp_port=0,
        http_host="127.0.0.1",
        hl7=Hl7Settings(listeners=(listener,)),
        bus=BusSettings(retry_delays_s=(0.1,), handler_timeout_s=10),
        shutdown_grace_s=2,
    )
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()
    if request.param == "rabbit":
        from tests.conftest import _delete_queues

        await _delete_queues(amqp_url, [route.queue for route in runtime.table.routes])


async def send(runtime: Runtime, raw: bytes, charset: str) -> Message:
    """One message through python-hl7's MLLP client; returns the parsed ACK."""
    reader, writer = await hl7.mllp.open_hl7_connection(
        "127.0.0.1", runtime.listeners[0].port, encoding=charset
    )
    try:
        writer.writemessage(hl7.parse(raw.decode(charset)))
        await writer.drain()
        ack = await asyncio.wait_for(reader.readmessage(), 10)
    finally:
        writer.close()
    return Message(str(ack))


def msa(ack: Message) -> tuple[str, str]:
    segment = ack.first("MSA")
    assert segment is not None
    return segment.value(1), segment.value(2)


async def test_the_corpus_is_acknowledged_archived_and_normalized(hub: Runtime) -> None:
    acks: dict[str, tuple[str, str]] = {}
    for entry in MANIFEST:
        raw = (CORPUS / entry["file"]).read_bytes()
        ack = await send(hub, raw, entry["charset"])
        acks[entry["file"]] = msa(ack)
        assert ack.receiver == (entry["sender"], entry["facility"])  # sender and receiver swapped
    for entry in MANIFEST:
        code, control = acks[entry["file"]]
        assert control == entry["control_id"], entry["file"]
        message = Message((CORPUS / entry["file"]).read_bytes().decode(entry["charset"]))
        if message.processing_id != "P":
            assert code == "AR", entry["file"]  # this interface takes production messages only
        elif message.msh.value(15):
            assert code == "CA", entry["file"]
        else:
            assert code == "AA", entry["file"]

    archive = hub.archive
    accepted = [e for e in MANIFEST if acks[e["file"]][0] in ("AA", "CA")]
    duplicates = len(accepted) - len(
        {(e["sender"], e["facility"], e["control_id"]) for e in accepted}
    )
    assert duplicates == 1  # the corpus's deliberate resend: archived once, answered twice

    async def settled() -> bool:
        found = await archive.search(ArchiveQuery(limit=1000))
        return all(m.status in ("stored", "unmapped", "rejected") for m in found)

    await hub.bus.handled_until(settled)
    found = await archive.search(ArchiveQuery(limit=1000))
    assert len(found) == len(MANIFEST) - duplicates
    by_status = {m.status for m in found}
    assert by_status <= {"stored", "unmapped", "rejected"}
    stored = [m for m in found if m.status == "stored"]
    assert {m.message_type for m in stored} >= {"ORU^R01", "ADT^A01", "ADT^A08"}
    assert all(m.resources for m in stored)
    cbc = next(m for m in stored if m.control_id == _control("19-lis-oru-r01-cbc-corrected.hl7"))
    assert any(r.startswith("Observation/") for r in cbc.resources)
    patients = await hub.archive.search(ArchiveQuery(patient_id=cbc.patient_ids[0]))
    assert cbc.id in {m.id for m in patients}

    observations = await hub.resources.count(parse_search("Observation", []))
    assert observations > 100
    # a resend of an ORU^R01 with a new control id updates the same resources
    entry = next(e for e in MANIFEST if e["file"].startswith("19-"))
    raw = (CORPUS / entry["file"]).read_bytes().decode(entry["charset"])
    resent = raw.replace(entry["control_id"], f"RESEND{uuid.uuid4().hex[:8]}", 1)
    assert msa(await send(hub, resent.encode(entry["charset"]), entry["charset"]))[0] == "AA"
    await hub.bus.handled_until(settled)
    assert await hub.resources.count(parse_search("Observation", [])) == observations


def _control(file: str) -> str:
    return str(next(e["control_id"] for e in MANIFEST if e["file"] == file))


async def test_bad_frames_get_ae_or_ar_and_the_link_survives(hub: Runtime) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.listeners[0].port)
    try:
        writer.write(b"noise before the frame" + frame(b"this is not HL7"))
        await writer.drain()
        answer = await _read_frame(reader)
        assert msa(Message(answer.decode()))[0] == "AE"
        unknown = b"MSH|^~\\&|LIS|SXH|HUB|SXH|20261126||QRY^A19|Q1|P|2.5\rQRD|1\r"
        writer.write(frame(unknown))
        await writer.drain()
        ack = Message((await _read_frame(reader)).decode())
        assert msa(ack) == ("AR", "Q1")
        err = ack.first("ERR")
        assert err is not None
        assert err.value(3, 1) == "200"
        huge = b"MSH|^~\\&|LIS|SXH|HUB|SXH|20261126||ORU^R01|BIG|P|2.5\rOBX|1|TX|||" + b"x" * 70_000
        writer.write(frame(huge))
        await writer.drain()
        assert msa(Message((await _read_frame(reader)).decode())) == ("AR", "BIG")
        assert await reader.read() == b""  # then the listener closes the connection
    finally:
        writer.close()
    refused = await hub.archive.search(ArchiveQuery(status="rejected"))
    assert len(refused) == 2  # what could be read of the refused messages is kept


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    data = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10)
    return data[data.index(b"\x0b") + 1 : -2]


async def test_stopping_with_an_idle_connection_open_is_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A sender that keeps its link open and idle is cut at shutdown without an error in the
    log: operations read errors there as something to act on."""
    runtime = Runtime(load_settings(data_dir=tmp_path, mllp_port=0, http_host="127.0.0.1"))
    await runtime.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", runtime.listeners[0].port)
    try:
        # one message and its ACK: the listener holds the connection, idle from then on
        message = (Path(__file__).parents[2] / "docs/examples/oru-r01-cbc.hl7").read_bytes()
        writer.write(b"\x0b" + message.replace(b"\n", b"\r") + b"\x1c\r")
        assert b"MSA|AA|" in await _read_frame(reader)
        listener = runtime.listeners[0]
        with caplog.at_level("ERROR"):
            await listener.stop(grace_s=0.1)
            # the end of the stream here comes after the listener's side of it has closed
            assert await asyncio.wait_for(reader.read(), 10) == b""
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    finally:
        writer.close()
        await runtime.stop()


async def test_connections_over_the_cap_are_refused_and_idle_ones_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listener = ListenerSettings(max_connections=3, idle_timeout_s=0.5)
    settings = load_settings(
        data_dir=tmp_path,
        mllp_port=0,
        http_host="127.0.0.1",
        hl7=Hl7Settings(listeners=(listener,)),
    )
    runtime = Runtime(settings)
    await runtime.start(consume=False)
    port = runtime.listeners[0].port
    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        writer.close()
        assert any(r.getMessage() == "connection_refused" for r in caplog.records)
        for held_reader, _ in held:  # the idle ones are closed after the idle timeout
            assert await asyncio.wait_for(held_reader.read(), 5) == b""
        for _, held_writer in held:
            held_writer.close()
        ack = await send(runtime, (CORPUS / MANIFEST[0]["file"]).read_bytes(), "utf-8")
        assert ack.first("MSA") is not None  # slots free again
    finally:
        await runtime.stop()
