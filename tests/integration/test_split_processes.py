"""The hub split as deployed for throughput: an intake process (``JIANHU_CONSUME=none``) that
only takes MLLP, archives and publishes, and a worker process on the same data directory and
the same RabbitMQ that normalizes. Here the two are two runtimes in one test process."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.base.errors import ConfigurationError
from hub.bus.settings import BusSettings
from hub.hl7v2.client import MllpClient
from hub.runtime import Runtime
from hub.settings import load_settings
from store.archive import ArchiveQuery
from tests.integration.test_bus_contract import wait_until_async

CORPUS = Path(__file__).parents[1] / "data" / "hl7"


def settings(tmp_path: Path, amqp_url: str, consume: str) -> Any:
    return load_settings(
        data_dir=tmp_path,
        amqp_url=amqp_url,
        mllp_port=0,
        http_host="127.0.0.1",
        consume=consume,
        bus=BusSettings(retry_delays_s=(0.1,), handler_timeout_s=10),
        shutdown_grace_s=2,
    )


@pytest.fixture
async def intake(broker: Any, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings(tmp_path, broker.url, "none"))
    await runtime.start()
    yield runtime
    await runtime.stop()
    from tests.conftest import _delete_queues

    await _delete_queues(broker.url, [route.queue for route in runtime.table.routes])


async def test_the_intake_acknowledges_and_the_worker_normalizes(
    intake: Runtime, broker: Any, tmp_path: Path
) -> None:
    client = MllpClient("127.0.0.1", intake.listeners[0].port)
    try:
        sent = await client.send(
            (CORPUS / "19-lis-oru-r01-cbc-corrected.hl7").read_bytes().decode("utf-8")
        )
    finally:
        await client.close()
    assert sent.outcome == "accepted", sent

    async def status() -> str:
        found = await intake.archive.search(ArchiveQuery(limit=10))
        return found[0].status if found else ""

    await wait_until_async(lambda: _is(status, "published"), 10)

    async def waiting_in_queue() -> bool:  # nobody takes it in the intake process
        depths = {d.queue: d.ready for d in await intake.bus.depths()}
        return depths.get("hl7v2.normalizer") == 1

    await wait_until_async(waiting_in_queue, 10)
    assert await status() == "published"

    worker = Runtime(settings(tmp_path, broker.url, "hl7v2.normalizer"))
    await worker.start()
    try:
        await wait_until_async(lambda: _is(status, "stored"), 20)
    finally:
        await worker.stop()


async def _is(status: Any, wanted: str) -> bool:
    return bool(await status() == wanted)


async def test_the_embedded_bus_cannot_be_split(tmp_path: Path) -> None:
    runtime = Runtime(settings(tmp_path, "", "none"))
    with pytest.raises(ConfigurationError, match="JIANHU_CONSUME"):
        await runtime.start()


async def test_an_unknown_queue_is_named(broker: Any, tmp_path: Path) -> None:
    runtime = Runtime(settings(tmp_path, broker.url, "hl7v2.normaliser"))
    with pytest.raises(ConfigurationError, match="normaliser"):
        await runtime.start()


async def test_one_lab_process_sees_what_another_normalized(
    intake: Runtime, broker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lab queues have a single active consumer: the first lab process takes every event
    of every normalizer, a second one waits as a standby with nothing of its own. When the
    first goes away the standby takes the queues over and, before its first message, rebuilds
    what the first one held from the store."""
    monkeypatch.setattr("hub.lab.service.STALE_AFTER_S", 0.0)  # any first message catches up
    worker = Runtime(settings(tmp_path, broker.url, "hl7v2.normalizer"))
    lab = Runtime(settings(tmp_path, broker.url, "lab.fhir,lab.hl7"))
    standby = Runtime(settings(tmp_path, broker.url, "lab.fhir,lab.hl7"))
    started: list[Runtime] = []
    try:
        for runtime in (worker, lab, standby):
            await runtime.start()
            started.append(runtime)
        await send(intake, "31-lis-oru-r01-critical-k-enhanced.hl7")
        assert worker.lab is None
        assert lab.lab is not None
        assert standby.lab is not None
        service = lab.lab
        await wait_until_async(lambda: _has_open_critical(service), 20)
        (critical,) = service.desk.open_alerts()
        assert standby.lab.desk.open_alerts() == []
        # the probes through the queue reach the active process only: the standby knows it is
        # one, and neither escalates nor serves the screens
        assert service.active
        assert not standby.lab.active

        await lab.stop()
        started.remove(lab)
        await send(intake, "18-emr-oml-o21-chem-order.hl7")  # the standby's first message
        taken_over = standby.lab
        await wait_until_async(lambda: _has_open_critical(taken_over), 20)
        assert [a.id for a in taken_over.desk.open_alerts()] == [critical.id]
        assert taken_over.active
    finally:
        for runtime in reversed(started):
            await runtime.stop()


async def send(intake: Runtime, name: str) -> None:
    client = MllpClient("127.0.0.1", intake.listeners[0].port)
    try:
        assert (await client.send((CORPUS / name).read_bytes().decode())).outcome == "accepted"
    finally:
        await client.close()


async def _has_open_critical(service: Any) -> bool:
    return bool(service.desk.open_alerts())


async def test_the_lab_queues_go_together(broker: Any, tmp_path: Path) -> None:
    runtime = Runtime(settings(tmp_path, broker.url, "lab.fhir"))
    with pytest.raises(ConfigurationError, match=r"lab\.hl7"):
        await runtime.start()
