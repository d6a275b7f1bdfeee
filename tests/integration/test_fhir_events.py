"""FHIR writes become events through the outbox, and rest-hook Subscriptions deliver them, on
the embedded bus and on the real RabbitMQ. Endpoints are real HTTP servers on loopback."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.bus.settings import BusSettings
from hub.bus.topology import EVENTS, QueueSpec
from hub.events import read_change_set
from hub.runtime import Runtime
from hub.settings import load_settings
from hub.subscriptions import DELIVER_KEY
from hub.web.app import make_app
from store.sqlite import SqliteStore
from tests.fixtures.examples import OBSERVATION
from tests.integration.fhir_api import Client, call, new_patient
from tests.integration.test_bus_contract import WAIT_S, Recorder, wait_until_async

HEMOGLOBIN = "http://loinc.org|718-7"


class Endpoint:
    """A subscriber's rest-hook endpoint that records calls and answers as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes, str]] = []
        self.answers: list[int] = []  # statuses to give, in order; then 200
        self.server: TestServer | None = None
        self._called = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self._called:
            call = (request.method, request.path, body, request.headers.get("X-Key", ""))
            self.calls.append(call)
            self._called.notify_all()
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    async def called(self, until: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        """Until the calls so far satisfy ``until`` (each call tells, nothing is polled)."""
        async with asyncio.timeout(timeout_s), self._called:
            await self._called.wait_for(until)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app)
        await self.server.start_server()
        return str(self.server.make_url("/hook"))


class Hub:
    def __init__(self, client: Client, runtime: Runtime, endpoint: Endpoint, url: str) -> None:
        self.client, self.runtime, self.endpoint, self.url = client, runtime, endpoint, url
        self.queues: list[str] = []  # the test's own, deleted after it on RabbitMQ


@pytest.fixture(params=["embedded", "rabbit"])
async def hub(request: Any, tmp_path: Path) -> AsyncIterator[Hub]:
    amqp_url = request.getfixturevalue("broker").url if request.param == "rabbit" else ""
    settings = load_settings(
        data_dir=tmp_path,
        amqp_url=amqp_url,
        api_keys="emr-key:clinician",
        bus=BusSettings(retry_delays_s=(0.1, 0.1), handler_timeout_s=5),
        shutdown_grace_s=2,
    )
    runtime = Runtime(settings)
    client = TestClient(TestServer(make_app(runtime)))
    await client.start_server()
    endpoint = Endpoint()
    url = await endpoint.start()
    hub = Hub(client, runtime, endpoint, url)
    yield hub
    await client.close()
    assert endpoint.server is not None
    await endpoint.server.close()
    if request.param == "rabbit":
        from tests.conftest import _delete_queues

        queues = [route.queue for route in runtime.table.routes]
        await _delete_queues(amqp_url, queues + hub.queues)


def subscription(url: str, criteria: str, payload: bool = True) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": url, "header": ["X-Key: s3cret"]}
    if payload:
        channel["payload"] = "application/fhir+json"
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "检验结果通知 EMR",
        "criteria": criteria,
        "channel": channel,
    }


def observation(patient_id: str, code: str = "718-7") -> dict[str, Any]:
    body = {k: v for k, v in OBSERVATION.items() if k != "id"}
    body["subject"] = {"reference": f"Patient/{patient_id}"}
    body["code"] = {"coding": [{"system": "http://loinc.org", "code": code}]}
    return body


async def subscribe(hub: Hub, body: dict[str, Any]) -> dict[str, Any]:
    """Create the Subscription and return it once the hub has made it active: told by the
    event of that update on the bus (a queue of the test's own), not polled."""
    watch = QueueSpec(f"test.subs.{uuid.uuid4().hex[:12]}", EVENTS, ("fhir.Subscription.*",))
    await hub.runtime.bus.declare(watch)
    seen = Recorder()
    await hub.runtime.bus.consume(watch.name, seen)
    hub.queues.append(watch.name)
    status, created, _ = await call(hub.client, "POST", "Subscription", body)
    assert status == 201

    def made_active() -> bool:
        changes = [c for d in seen.done for c in read_change_set(d.envelope, d.routing_key)]
        return any(
            c.id == created["id"] and (c.resource or {}).get("status") == "active" for c in changes
        )

    await seen.handled_until(made_active)
    return dict(created)


async def test_matching_writes_are_delivered_to_the_endpoint(hub: Hub) -> None:
    await subscribe(hub, subscription(hub.url, f"Observation?code={HEMOGLOBIN}"))
    _, patient, _ = await call(hub.client, "POST", "Patient", new_patient())
    _, glucose, _ = await call(
        hub.client, "POST", "Observation", observation(patient["id"], "2345-7")
    )
    _, matched, _ = await call(hub.client, "POST", "Observation", observation(patient["id"]))
    await hub.endpoint.called(lambda: len(hub.endpoint.calls) >= 1)
    method, path, body, key = hub.endpoint.calls[0]
    assert (method, path, key) == ("PUT", f"/hook/Observation/{matched['id']}", "s3cret")
    assert orjson.loads(body)["id"] == matched["id"]
    assert all(glucose["id"] not in call[1] for call in hub.endpoint.calls)


async def test_a_change_set_delivers_each_matching_entry_once(hub: Hub) -> None:
    """A transaction of six Observations is relayed as one change set; the matcher asks the
    store once which of them match, and each of the three that do is delivered once."""
    await subscribe(hub, subscription(hub.url, f"Observation?code={HEMOGLOBIN}"))
    _, patient, _ = await call(hub.client, "POST", "Patient", new_patient())
    codes = ["718-7", "2345-7", "718-7", "2345-7", "718-7", "2345-7"]
    entries = [
        {
            "resource": observation(patient["id"], code),
            "request": {"method": "POST", "url": "Observation"},
        }
        for code in codes
    ]
    status, outcome, _ = await call(
        hub.client, "POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    assert status == 200
    ids = [
        e["response"]["location"].split("Observation/")[1].split("/")[0] for e in outcome["entry"]
    ]
    wanted = {
        f"/hook/Observation/{id_}" for id_, code in zip(ids, codes, strict=True) if code == "718-7"
    }
    # A write after the set, delivered after it: a second delivery of an entry would be in by then.
    _, last, _ = await call(hub.client, "POST", "Observation", observation(patient["id"]))
    wanted.add(f"/hook/Observation/{last['id']}")
    await hub.endpoint.called(
        lambda: f"/hook/Observation/{last['id']}" in [c[1] for c in hub.endpoint.calls]
    )
    await hub.endpoint.called(lambda: len(hub.endpoint.calls) >= len(wanted))
    assert sorted(c[1] for c in hub.endpoint.calls) == sorted(wanted)


async def test_failing_endpoints_are_retried_then_dead_lettered(hub: Hub) -> None:
    hub.endpoint.answers = [503, 503]  # two failures, then success
    await subscribe(hub, subscription(hub.url, "Patient?gender=female", payload=False))
    await call(hub.client, "POST", "Patient", new_patient(gender="female"))
    await hub.endpoint.called(lambda: len(hub.endpoint.calls) >= 3, timeout_s=15)
    assert len(hub.endpoint.calls) == 3
    assert [c[0] for c in hub.endpoint.calls] == ["POST", "POST", "POST"]

    hub.endpoint.answers = [400]  # refused: a person must look, so it waits in the dead letters
    await call(hub.client, "POST", "Patient", new_patient(gender="female"))
    dead: list[Any] = []

    async def dead_lettered() -> bool:
        dead[:] = await hub.runtime.bus.dead_letters("fhir.subscription-delivery")
        return bool(dead)

    await wait_until_async(dead_lettered)
    assert dead[0].error_class.endswith("PermanentError")
    assert dead[0].routing_key == DELIVER_KEY


async def test_the_outbox_survives_a_crash_between_commit_and_publish(
    hub: Hub, tmp_path: Path
) -> None:
    """Writes committed while no relay ran (a crash right after the commit) are published when
    the hub starts again."""
    recorder = Recorder()
    events = recorder.done
    queue = QueueSpec(f"test.events.{uuid.uuid4().hex[:12]}", EVENTS, ("fhir.Patient.*",))
    await hub.runtime.bus.declare(queue)
    await hub.runtime.bus.consume(queue.name, recorder)
    assert hub.runtime.relay is not None
    await hub.runtime.relay.drain()  # what the start wrote (the code tables) is out already
    await hub.runtime.relay.stop()  # the crash: nothing relays from here on
    store = SqliteStore(tmp_path / "jianhu.sqlite3")
    await store.open()
    created = await store.resources.create(new_patient())
    await store.resources.delete("Patient", created.id)
    await store.close()
    # nothing was relayed while the relay was down: both writes are still waiting for it
    waiting = await hub.runtime.resources.pending_events(10)
    assert [(e.type, e.id) for e in waiting] == [("Patient", created.id)] * 2
    assert events == []

    hub.runtime.relay.start()  # the restart
    await recorder.handled(2)
    assert len(events) == 2
    assert [e.envelope.type for e in events] == ["fhir.Patient.created", "fhir.Patient.deleted"]
    first, gone = (read_change_set(e.envelope, e.routing_key) for e in events)
    assert [c.version_path for c in first] == [f"Patient/{created.id}/_history/1"]
    assert first[0].resource is not None
    assert first[0].resource["id"] == created.id
    assert [(c.id, c.version, c.resource) for c in gone] == [(created.id, 2, None)]

    # the relay marks them published after the bus confirmed; a drain waits for one under way
    assert await hub.runtime.relay.drain() == 0
    assert await hub.runtime.resources.pending_events(10) == []
    if hub.runtime.settings.amqp_url.get_secret_value():
        from tests.conftest import _delete_queues

        await _delete_queues(hub.runtime.settings.amqp_url.get_secret_value(), [queue.name])
