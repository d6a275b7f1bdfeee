"""The running hub over HTTP: health, readiness, metrics, the ops API for dead letters, and
the bearer-token roles. Runs on the embedded bus and on the real RabbitMQ."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.base.errors import PermanentError
from hub.bus.base import Delivery
from hub.bus.routing import Route
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND
from hub.runtime import Runtime
from hub.settings import load_settings
from hub.web.app import make_app
from routes.table import RoutingTable
from tests.integration.test_bus_contract import envelope

OPS = {"Authorization": "Bearer ops-key"}
SCREEN = {"Authorization": "Bearer wall-key"}


class Hub:
    def __init__(
        self, client: TestClient[Any, Any], runtime: Runtime, queue: str, key: str
    ) -> None:
        self.client, self.runtime, self.queue, self.key = client, runtime, queue, key
        self.handled: list[Delivery] = []
        self.poison = "POISON"
        self._changed = asyncio.Condition()

    async def take(self, delivery: Delivery) -> None:
        async with self._changed:
            self.handled.append(delivery)
            self._changed.notify_all()

    async def handled_at_least(self, count: int, timeout_s: float = 10) -> None:
        """Until the route's handler has taken ``count`` deliveries (told, not polled)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.handled) >= count)


@pytest.fixture(params=["embedded", "rabbit"])
async def hub(request: Any, tmp_path: Path) -> AsyncIterator[Hub]:
    amqp_url = request.getfixturevalue("broker").url if request.param == "rabbit" else ""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        data_dir=tmp_path,
        amqp_url=amqp_url,
        api_keys="ops-key:ops,wall-key:screen",
        bus=BusSettings(retry_delays_s=(0.1,), handler_timeout_s=5),
        shutdown_grace_s=2,
    )
    holder: dict[str, Hub] = {}

    def factory(_: object) -> Any:
        async def handle(delivery: Delivery) -> None:
            if delivery.envelope.type == holder["hub"].poison:
                raise PermanentError("cannot map this message")
            await holder["hub"].take(delivery)

        return handle

    route = Route(f"{prefix}.work", INBOUND, (f"{prefix}.#",), "test", "test route")
    runtime = Runtime(settings, RoutingTable((route,), {"test": factory}))
    client = TestClient(TestServer(make_app(runtime)))
    await client.start_server()
    holder["hub"] = Hub(client, runtime, route.queue, f"{prefix}.msg")
    yield holder["hub"]
    await client.close()
    if request.param == "rabbit":
        from tests.conftest import _delete_queues

        await _delete_queues(amqp_url, [route.queue])


async def test_health_and_readiness(hub: Hub) -> None:
    assert (await hub.client.get("/healthz")).status == 200
    ready = await hub.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"bus": "ok", "store": "ok"}


async def test_readiness_fails_when_the_store_is_gone(hub: Hub) -> None:
    await hub.runtime.store.close()
    ready = await hub.client.get("/readyz")
    assert ready.status == 503
    body = await ready.json()
    assert body["checks"]["bus"] == "ok"
    assert body["checks"]["store"] != "ok"


async def test_messages_flow_and_metrics_count_them(hub: Hub) -> None:
    for n in range(3):
        await hub.runtime.bus.publish(envelope(n), hub.key)
    await hub.handled_at_least(3)
    assert len(hub.handled) == 3
    text = await (await hub.client.get("/metrics", headers=OPS)).text()
    assert f'jianhu_bus_published_total{{queue="{hub.queue}"}} 3.0' in text
    assert f'jianhu_bus_consumed_total{{queue="{hub.queue}"}} 3.0' in text
    assert f'jianhu_bus_handler_seconds_count{{queue="{hub.queue}"}} 3.0' in text
    assert f'jianhu_bus_queue_depth{{queue="{hub.queue}"}}' in text


async def test_ops_api_lists_shows_and_redrives_dead_letters(hub: Hub) -> None:
    bad = envelope(7).evolve(type=hub.poison)
    await hub.runtime.bus.publish(bad, hub.key)

    async def listed() -> list[dict[str, Any]]:
        response = await hub.client.get(f"/ops/dlq/{hub.queue}", headers=OPS)
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]

    for _ in range(200):
        if dead := await listed():
            break
        await asyncio.sleep(0.05)
    assert [d["id"] for d in dead] == [bad.id]
    assert dead[0]["error"] == "cannot map this message"
    shown = await hub.client.get(f"/ops/dlq/{hub.queue}/{bad.id}", headers=OPS)
    assert (await shown.json())["envelope"]["body"].startswith("MSH|")
    missing = await hub.client.get(f"/ops/dlq/{hub.queue}/nope", headers=OPS)
    assert missing.status == 404
    assert (await missing.json())["resourceType"] == "OperationOutcome"
    hub.poison = "fixed"  # the mapping bug is fixed, then the message is redriven
    redriven = await hub.client.post(
        f"/ops/dlq/{hub.queue}/redrive", json={"ids": [bad.id]}, headers=OPS
    )
    assert (await redriven.json()) == {"redriven": 1}
    await hub.handled_at_least(1)  # nothing else was sent: the one handled is the redriven
    assert [d.envelope.id for d in hub.handled] == [bad.id]
    assert await listed() == []


async def test_ops_api_needs_a_token_with_the_right_role(hub: Hub) -> None:
    assert (await hub.client.get("/ops/queues")).status == 401
    assert (
        await hub.client.get("/ops/queues", headers={"Authorization": "Bearer x"})
    ).status == 401
    assert (await hub.client.get("/ops/queues", headers=SCREEN)).status == 403
    assert (await hub.client.get("/metrics", headers=SCREEN)).status == 403
    queues = await hub.client.get("/ops/queues", headers=OPS)
    assert [q["queue"] for q in await queues.json()] == [hub.queue]
    bad = await hub.client.post(f"/ops/dlq/{hub.queue}/redrive", data=b"{", headers=OPS)
    assert bad.status == 400
    assert (await hub.client.get("/ops/dlq/no-such-queue", headers=OPS)).status == 404
