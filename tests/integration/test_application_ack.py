"""Enhanced-mode application ACKs on real sockets and the real broker: a sender that asks for
them (MSH-16) gets CA on its connection at once and, once the message is normalized, an
application ACK (AA, or AE with ERR) on its own receiving port, here a python-hl7 server."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp
import pytest

from hub.bus.settings import BusSettings
from hub.hl7v2.client import MllpClient
from hub.hl7v2.message import Message
from hub.hl7v2.settings import Hl7Settings
from hub.runtime import Runtime
from hub.settings import load_settings

CORPUS = Path(__file__).parents[1] / "data" / "hl7"


class SenderInbox:
    """The sending system's own MLLP receiver, where its application ACKs arrive."""

    def __init__(self) -> None:
        self.acks: list[Message] = []

    async def handle(
        self, reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter
    ) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                self.acks.append(Message(str(message)))
                writer.writemessage(message.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[SenderInbox, int]]:
    found = SenderInbox()
    server = await hl7.mllp.start_hl7_server(found.handle, "127.0.0.1", 0, encoding="utf-8")
    yield found, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def hub(
    broker: Any, tmp_path: Path, inbox: tuple[SenderInbox, int]
) -> AsyncIterator[Runtime]:
    settings = load_settings(
        data_dir=tmp_path,
        amqp_url=broker.url,
        mllp_port=0,
        http_host="127.0.0.1",
        hl7=Hl7Settings(application_ack={"LIS^JHYY": f"127.0.0.1:{inbox[1]}"}),
        bus=BusSettings(retry_delays_s=(0.1,), handler_timeout_s=10),
        shutdown_grace_s=2,
    )
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()
    from tests.conftest import _delete_queues

    await _delete_queues(broker.url, [route.queue for route in runtime.table.routes])


async def test_accept_ack_at_once_then_the_application_ack(
    hub: Runtime, inbox: tuple[SenderInbox, int]
) -> None:
    found, _ = inbox
    text = (CORPUS / "31-lis-oru-r01-critical-k-enhanced.hl7").read_bytes().decode("utf-8")
    pid = next(segment for segment in text.split("\r") if segment.startswith("PID|"))
    fields = pid.split("|")
    fields[3] = ""  # no patient identifier: the message cannot be filed
    broken = text.replace("LIS20260312052211002", "BROKEN0001").replace(pid, "|".join(fields))
    client = MllpClient("127.0.0.1", hub.listeners[0].port)
    try:
        accepted = await client.send(text)
        refused = await client.send(broken)
    finally:
        await client.close()
    assert (accepted.code, refused.code) == ("CA", "CA")  # both are safe in the archive

    await hub.bus.handled_until(lambda: _count(found, 2), 20)  # the sender has them
    by_control = {ack.first("MSA").value(2): ack for ack in found.acks}  # type: ignore[union-attr]
    good = by_control["LIS20260312052211002"]
    assert good.first("MSA").value(1) == "AA"  # type: ignore[union-attr]
    assert good.receiver == ("LIS", "JHYY")  # back to the sender
    bad = by_control["BROKEN0001"]
    assert bad.first("MSA").value(1) == "AE"  # type: ignore[union-attr]
    err = bad.first("ERR")
    assert err is not None
    assert err.value(3) == "207"
    assert "PID-3" in err.value(7)  # ERR-7, diagnostic information


async def _count(inbox: SenderInbox, wanted: int) -> bool:
    return len(inbox.acks) >= wanted
