"""A destination over AMQP on the real RabbitMQ: the message goes to the configured exchange as
the plain ER7 the systems publish themselves (not the hub's envelope), with the delivery's id as
its message_id, read by a client the hub does not contain (pika); the ledger records it."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp
import pika
import pytest

from hub.bus.settings import BusSettings
from hub.destinations.router import ADAPTER
from hub.runtime import Runtime
from hub.settings import load_settings
from store.ledger import ACCEPTED, LedgerQuery
from tests.broker import Broker
from tests.conftest import _delete_queues
from tests.integration.test_destinations import adt

KEY = f"his.adt.{uuid.uuid4().hex[:8]}"


class Reader:
    """A system listening on amq.topic with a queue of its own."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, "amq.topic", KEY)

    def next(self, timeout_s: float = 30.0) -> tuple[Any, bytes]:
        for method, properties, body in self.channel.consume(
            self.queue, auto_ack=True, inactivity_timeout=timeout_s
        ):
            self.channel.cancel()
            if method is None:
                raise AssertionError(f"nothing within {timeout_s} s")
            return properties, body
        raise AssertionError("the queue closed")


@pytest.fixture
async def hub(broker: Broker, tmp_path: Path) -> AsyncIterator[Runtime]:
    config = tmp_path / "config"
    config.mkdir()
    destination = {
        "name": "adt-to-bus",
        "transport": {"kind": "amqp", "exchange": "amq.topic", "routing_key": KEY},
        "filter": {"message_types": ["ADT"]},
    }
    (config / "destinations.json").write_text(json.dumps([destination]), encoding="utf-8")
    settings = load_settings(
        data_dir=tmp_path / "data",
        config_dir=config,
        amqp_url=broker.url,
        mllp_port=0,
        bus=BusSettings(retry_delays_s=(0.5,), handler_timeout_s=10),
        shutdown_grace_s=2,
    )
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()
    await _delete_queues(broker.url, [route.queue for route in runtime.table.routes])


async def test_an_amqp_destination_gets_the_plain_message(hub: Runtime, broker: Broker) -> None:
    reader = await asyncio.to_thread(Reader, broker.url)
    try:
        port = hub.listeners[0].port
        reader_stream, writer = await hl7.mllp.open_hl7_connection(
            "127.0.0.1", port, encoding="utf-8"
        )
        writer.writemessage(hl7.parse(adt("AQ1", "P1")))
        await writer.drain()
        assert "AA" in str((await reader_stream.readmessage()).segment("MSA"))
        writer.close()
        properties, body = await asyncio.to_thread(reader.next)
    finally:
        await asyncio.to_thread(reader.connection.close)
    assert body.startswith(b"MSH|^~\\&|HIS|")
    assert b"|AQ1|" in body
    assert properties.content_type == "x-application/hl7-v2+er7"
    (delivery,) = await hub.store.ledger.search(
        LedgerQuery(adapter=ADAPTER, interface="adt-to-bus")
    )
    assert properties.message_id == delivery.id  # the same on every send: the reader's dedup key

    async def recorded() -> bool:
        return (await hub.store.ledger.get(delivery.id)).status == ACCEPTED

    await hub.bus.handled_until(recorded)
