"""Shared fixtures: a real RabbitMQ broker for the session, and bus factories for both buses."""

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from yarl import URL

from hub.base import site_files
from hub.base.metrics import HubMetrics
from hub.bus.base import Bus
from hub.bus.embedded import EmbeddedBus
from hub.bus.rabbit import RabbitBus
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND, QueueSpec, dead_queue_name
from tests.broker import Broker, find_broker
from tests.tcp_proxy import TcpProxy

ON_CI = os.environ.get("CI", "").lower() == "true"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="the long fault and load runs: the same tests at full size (kill -9 in the middle "
        "of long streams, 100,000 broken frames, a 50,000-OBX message), with longer timeouts",
    )


@pytest.fixture(autouse=True)
def _own_site_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The site folder a hub chose (``site_files.use``) is the process's: each test starts
    without one, as a fresh process would."""
    monkeypatch.setattr(site_files, "_chosen", [])


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """Whether this is the long run; a test sizes itself by it, and gets 15 minutes."""
    long = bool(request.config.getoption("--long"))
    if long:
        request.node.add_marker(pytest.mark.timeout(900))
    return long


# Every hub a test starts listens for MLLP on a free port, so tests never fight over 2575.
os.environ.setdefault("JIANHU_MLLP_PORT", "0")
FAST_RETRIES = BusSettings(retry_delays_s=(0.2, 0.4), delivery_limit=5, handler_timeout_s=10)


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    try:
        found = find_broker()
    except Exception as exc:
        if ON_CI:
            pytest.fail(f"CI=true and no RabbitMQ broker could be found or started: {exc}")
        pytest.skip(f"no RabbitMQ broker: {exc}")
    yield found
    if found.stop is not None:
        found.stop()


class BusFactory:
    """Makes buses of one kind with test-only queue names, and cleans up after the test."""

    def __init__(self, kind: str, tmp_path: Path, broker: Broker | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.broker = broker
        self.buses: list[Bus] = []
        self.proxies: list[TcpProxy] = []
        self.queues: list[str] = []
        self.prefix = f"t{uuid.uuid4().hex[:10]}"

    def spec(self, name: str = "work", exchange: str = INBOUND, *patterns: str) -> QueueSpec:
        queue = f"{self.prefix}.{name}"
        self.queues.append(queue)
        return QueueSpec(queue, exchange, patterns or (f"{self.prefix}.#",))

    def key(self, suffix: str = "msg") -> str:
        return f"{self.prefix}.{suffix}"

    async def make(
        self, settings: BusSettings = FAST_RETRIES, via_proxy: TcpProxy | None = None
    ) -> Bus:
        metrics = HubMetrics().bus
        if self.kind == "embedded":
            bus: Bus = EmbeddedBus(self.tmp_path / "bus.sqlite3", settings, metrics)
        else:
            assert self.broker is not None
            url = self.broker.url
            if via_proxy is not None:
                parsed = URL(url)
                url = str(parsed.with_host("127.0.0.1").with_port(via_proxy.port))
            bus = RabbitBus(url, settings, metrics)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def proxy(self) -> TcpProxy:
        assert self.broker is not None
        parsed = URL(self.broker.url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5672)
        await proxy.start()
        self.proxies.append(proxy)
        return proxy

    async def cleanup(self) -> None:
        for bus in self.buses:
            await _quietly_close(bus)
        for proxy in self.proxies:
            await proxy.close()
        if self.kind == "rabbit" and self.broker is not None:
            await _delete_queues(self.broker.url, self.queues)


async def _quietly_close(bus: Bus) -> None:
    with contextlib.suppress(Exception):  # a test may have closed or cut it already
        await bus.close()


async def _delete_queues(url: str, queues: list[str]) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        for name in queues:
            for queue in (name, dead_queue_name(name)):
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.queue_delete(queue)
                if not channel.is_closed:
                    await channel.close()


@pytest.fixture(params=["embedded", "rabbit"])
async def buses(request: Any, tmp_path: Path) -> AsyncIterator[BusFactory]:
    broker = request.getfixturevalue("broker") if request.param == "rabbit" else None
    factory = BusFactory(request.param, tmp_path, broker)
    yield factory
    await factory.cleanup()
