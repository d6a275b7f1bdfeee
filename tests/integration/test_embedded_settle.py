"""The embedded bus on a controlled clock: a retry comes due when the clock passes its delay,
not before, and ``settled`` says when nothing due is left, so "nothing more arrives" is checked
without waiting. A whole hub settles the same way: a message is stored, its events handled and
what those handlers wrote handled in turn, before ``settle`` returns."""

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hub.base.errors import ConfigurationError, RetryableError
from hub.base.metrics import BusMetrics
from hub.bus.base import Delivery
from hub.bus.embedded import EmbeddedBus
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND, QueueSpec
from hub.runtime import Runtime
from hub.settings import load_settings
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from tests.clock import ManualClock
from tests.integration.fhir_api import start_api
from tests.integration.test_bus_contract import envelope
from tests.integration.test_lab_feed import CORPUS, CRITICAL_K, SYSTEM, lab_of

DELAYS = (60.0, 600.0)  # a minute, then ten: as production would, and no test waits them


async def test_retries_come_due_on_the_clock_and_then_die(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = BusSettings(retry_delays_s=DELAYS, handler_timeout_s=5)
    bus = EmbeddedBus(
        tmp_path / "bus.sqlite3", settings, BusMetrics(CollectorRegistry()), clock=clock
    )
    await bus.start()
    try:
        await bus.declare(QueueSpec("q", INBOUND, ("lis.#",)))
        attempts: list[int] = []

        async def busy(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            raise RetryableError("LIS busy")

        await bus.publish(envelope(), "lis.oru")
        await bus.consume("q", busy)
        await bus.settled()
        assert attempts == [1]
        clock.advance(DELAYS[0] - 1)
        await bus.settled()
        assert attempts == [1]  # not yet due: nothing arrives
        clock.advance(1)
        await bus.settled()
        assert attempts == [1, 2]
        clock.advance(DELAYS[1])
        await bus.settled()
        assert attempts == [1, 2, 3]
        (dead,) = await bus.dead_letters("q")
        assert dead.attempts == 3
        clock.advance(10 * DELAYS[1])
        await bus.settled()
        assert attempts == [1, 2, 3]  # dead: it comes back no more
    finally:
        await bus.close(grace_s=1)


async def test_settled_waits_for_a_handler_still_running(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.sqlite3", BusSettings(), BusMetrics(CollectorRegistry()))
    await bus.start()
    try:
        await bus.declare(QueueSpec("q", INBOUND, ("lis.#",)))
        done: list[str] = []

        async def slow(delivery: Delivery) -> None:
            for _ in range(50):  # many hand-backs to the loop before it finishes
                await bus.settled_now()
            done.append(delivery.envelope.id)

        sent = envelope()
        await bus.publish(sent, "lis.oru")
        await bus.consume("q", slow)
        await bus.settled()
        assert done == [sent.id]
    finally:
        await bus.close(grace_s=1)


async def test_a_hub_settles_once_a_message_and_what_it_caused_are_handled(
    tmp_path: Path,
) -> None:
    api = await start_api(tmp_path, consume=True)
    try:
        response = await api.post("/hl7v2", data=(CORPUS / CRITICAL_K).read_bytes(), headers=SYSTEM)
        assert response.status == 200
        runtime = api.app[RUNTIME]
        await runtime.settle()
        (message,) = await runtime.archive.search(ArchiveQuery(limit=5))
        assert message.status == "stored"
        assert lab_of(api).view.overview()["critical"] != []  # the event reached the lab
        assert await runtime.resources.pending_events(10) == []
    finally:
        await api.close()


async def test_settle_refuses_a_hub_without_the_embedded_bus(tmp_path: Path) -> None:
    runtime = Runtime(load_settings(amqp_url="amqp://nowhere", data_dir=tmp_path))
    with pytest.raises(ConfigurationError, match="embedded bus"):
        await runtime.settle()
