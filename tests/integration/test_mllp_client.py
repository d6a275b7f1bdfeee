"""The outbound MLLP client against a receiver written with python-hl7 (not ours): it reuses
its connection, tells AA from AE, and resends after a dropped connection."""

import asyncio
from collections.abc import AsyncIterator

import hl7
import hl7.mllp
import pytest

from hub.hl7v2.client import ACCEPTED, FAILED, REJECTED, MllpClient

ORDER = (
    "MSH|^~\\&|JIANHU|SXH|LIS|SXH|20261126090000||ORM^O01|{id}|P|2.5\r"
    "PID|1||JZK0001^^^^PI||张^三\r"
    "ORC|NW|{id}\r"
    "OBR|1|{id}||718-7^血红蛋白^LN\r"
)


class Receiver:
    def __init__(self) -> None:
        self.connections = 0
        self.received: list[str] = []
        self.dropped = False

    async def handle(
        self, reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter
    ) -> None:
        self.connections += 1
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                text = str(message)
                self.received.append(text)
                if "FLAKY" in text and not self.dropped:
                    self.dropped = True
                    writer.close()  # gone without an ACK
                    return
                code = "AE" if "REFUSE" in text else "AA"
                writer.writemessage(message.create_ack(ack_code=code))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    found = Receiver()
    server = await hl7.mllp.start_hl7_server(found.handle, "127.0.0.1", 0, encoding="utf-8")
    yield found, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_accepts_refusals_and_resends(receiver: tuple[Receiver, int]) -> None:
    found, port = receiver
    client = MllpClient("127.0.0.1", port, timeout_s=5, attempts=3, backoff_s=0.05)
    try:
        first = await client.send(ORDER.format(id="O1"))
        second = await client.send(ORDER.format(id="O2"))
        assert (first.outcome, first.code) == (ACCEPTED, "AA")
        assert second.outcome == ACCEPTED
        assert found.connections == 1  # one connection for both
        refused = await client.send(ORDER.format(id="REFUSE1"))
        assert (refused.outcome, refused.code) == (REJECTED, "AE")
        flaky = await client.send(ORDER.format(id="FLAKY1"))
        assert (flaky.outcome, flaky.attempts) == (ACCEPTED, 2)
        assert found.connections == 2
    finally:
        await client.close()


async def test_an_unreachable_receiver_fails_after_its_attempts() -> None:
    client = MllpClient("127.0.0.1", 9, timeout_s=1, attempts=2, backoff_s=0.01)
    result = await client.send(ORDER.format(id="X1"))
    assert (result.outcome, result.attempts) == (FAILED, 2)
    assert result.error


async def test_an_answer_out_of_step_starts_a_new_connection() -> None:
    """A receiver that answers every message twice: the stray second ACK is taken for no
    message's, the connection is dropped, and the next message goes on a clean one (before,
    every later message read the ACK of the one before it)."""
    seen: list[str] = []

    async def twice(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                seen.append(str(message.segment("MSH")[10]))
                for _ in range(2):
                    writer.writemessage(message.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass

    server = await hl7.mllp.start_hl7_server(twice, "127.0.0.1", 0, encoding="utf-8")
    port = server.sockets[0].getsockname()[1]
    client = MllpClient("127.0.0.1", port, timeout_s=5, attempts=1)
    try:
        results = [await client.send(ORDER.format(id=f"D{n}")) for n in range(1, 4)]
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert [r.outcome for r in results] == [ACCEPTED, FAILED, ACCEPTED]
    assert "not 'D2'" in results[1].error
    assert seen == ["D1", "D2", "D3"]  # each sent once
