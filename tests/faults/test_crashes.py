"""The hub killed (kill -9) in the middle of a stream, on the embedded bus and on RabbitMQ, and
the broker restarted under load: every acknowledged message is stored, none is processed or
archived twice, and a resend after the crash gets the ACK it got before. Short by default;
``--long`` streams ten times as many messages."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.conftest import _delete_queues
from tests.faults.streams import Hub, Progress, Sender, all_stored, oru, route_queues, tally

pytestmark = pytest.mark.fault


async def wait_listening(port: int, timeout_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nothing listens on {port}") from None
            await asyncio.sleep(0.1)


@pytest.fixture(params=["embedded", "rabbit"])
async def bus_url(request: Any) -> AsyncIterator[str]:
    if request.param == "embedded":
        yield ""
        return
    broker: Broker = request.getfixturevalue("broker")
    await _delete_queues(broker.url, route_queues())
    yield broker.url
    await _delete_queues(broker.url, route_queues())


async def test_kill_9_in_the_middle_of_a_stream_loses_nothing(
    tmp_path: Path, bus_url: str, long_run: bool
) -> None:
    total, senders_count = (2000, 4) if long_run else (240, 4)
    hub = Hub(tmp_path, amqp_url=bus_url)
    hub.start()
    try:
        await wait_listening(hub.mllp_port)
        share = total // senders_count
        streams = [
            [(f"LIS{n:08d}", oru(n)) for n in range(k * share, (k + 1) * share)]
            for k in range(senders_count)
        ]
        progress = Progress(total // 3)  # a third through the stream
        senders = [Sender(hub.mllp_port, on_ack=progress) for _ in streams]
        sending = [
            asyncio.ensure_future(sender.send_all(stream, 240))
            for sender, stream in zip(senders, streams, strict=True)
        ]
        await asyncio.wait_for(progress.reached.wait(), 120)
        just_acknowledged = [list(sender.acks)[-1] for sender in senders if sender.acks]
        hub.kill()
        hub.start()  # the senders keep resending until the restarted hub answers
        await asyncio.gather(*sending)
        # each sender resends what it had acknowledged just before the crash
        messages = {control: raw for stream in streams for control, raw in stream}
        for sender, control in zip(senders, just_acknowledged, strict=False):
            await sender.send_all([(control, messages[control])], 60)
        sent = set(messages)
        rows = await all_stored(hub.archive, sent, 240)
    finally:
        hub.stop()
    for sender in senders:
        sender.close()
    bus = "RabbitMQ" if bus_url else "embedded"
    figures = tally(f"kill -9 mid-stream, {bus}", sent, senders, rows)
    figures.print()
    assert figures.acknowledged == total
    assert figures.lost == 0
    assert figures.stored == total
    assert figures.processed_twice == 0
    assert figures.archived_twice == 0
    assert figures.other_ack_after_crash == 0


async def test_a_broker_restart_under_load_loses_nothing(
    tmp_path: Path, broker: Broker, long_run: bool
) -> None:
    if broker.restart is None:
        pytest.skip(f"the broker from {broker.origin} cannot be restarted by the tests")
    await _delete_queues(broker.url, route_queues())
    total = 1500 if long_run else 200
    hub = Hub(tmp_path, amqp_url=broker.url)
    hub.start()
    try:
        await wait_listening(hub.mllp_port)
        stream = [(f"LIS{n:08d}", oru(n)) for n in range(total)]
        progress = Progress(total // 4)
        sender = Sender(hub.mllp_port, timeout_s=5, on_ack=progress)
        sending = asyncio.ensure_future(sender.send_all(stream, 240))
        await asyncio.wait_for(progress.reached.wait(), 120)
        await asyncio.to_thread(broker.restart)
        await sending
        sent = {control for control, _ in stream}
        rows = await all_stored(hub.archive, sent, 240)
    finally:
        sender.close()
        hub.stop()
        await _delete_queues(broker.url, route_queues())
    figures = tally("RabbitMQ restarted mid-stream", sent, [sender], rows)
    figures.print()
    assert figures.lost == 0
    assert figures.stored == total
    assert figures.processed_twice == 0
    assert figures.archived_twice == 0
