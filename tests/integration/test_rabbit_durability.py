"""What only a real broker can show: quorum queues survive a restart, and a cut link loses
nothing that was confirmed (duplicates are the only side effect)."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.base.errors import PublishError, RetryableError
from hub.bus.base import Delivery
from hub.bus.settings import BusSettings
from tests.broker import Broker
from tests.conftest import BusFactory
from tests.integration.test_bus_contract import envelope, wait_until


@pytest.fixture
async def rabbit(broker: Broker, tmp_path: Path) -> AsyncIterator[BusFactory]:
    factory = BusFactory("rabbit", tmp_path, broker)
    yield factory
    await factory.cleanup()


async def test_quorum_queue_keeps_messages_across_a_broker_restart(
    rabbit: BusFactory, broker: Broker
) -> None:
    if broker.restart is None:
        pytest.skip(f"the broker from {broker.origin} cannot be restarted by the tests")
    bus = await rabbit.make()
    spec = rabbit.spec()
    await bus.declare(spec)
    sent = [envelope(n) for n in range(50)]
    await bus.publish_many([(item, rabbit.key()) for item in sent])
    await bus.close()
    await asyncio.to_thread(broker.restart)
    after = await rabbit.make()
    await after.declare(spec)
    got: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery)

    await after.consume(spec.name, handler)
    await wait_until(lambda: len(got) >= 50, timeout_s=30)
    assert {d.envelope.id for d in got} == {item.id for item in sent}


async def test_cut_link_mid_stream_loses_no_confirmed_message(rabbit: BusFactory) -> None:
    """Publisher and consumer share a link through a proxy that is cut three times."""
    proxy = await rabbit.proxy()
    bus = await rabbit.make(BusSettings(prefetch=50, publish_window=20), via_proxy=proxy)
    spec = rabbit.spec()
    await bus.declare(spec)
    consumed: list[str] = []

    async def handler(delivery: Delivery) -> None:
        await asyncio.sleep(0.001)
        consumed.append(delivery.envelope.id)

    await bus.consume(spec.name, handler)
    confirmed: list[str] = []
    unconfirmed = 0

    async def cutter() -> None:
        for _ in range(3):
            await asyncio.sleep(0.4)
            proxy.cut()

    cuts = asyncio.create_task(cutter())
    for n in range(2000):
        item = envelope(n)
        try:
            await bus.publish(item, rabbit.key())
            confirmed.append(item.id)
        except PublishError:
            unconfirmed += 1  # outcome unknown to the publisher: it may or may not arrive
            await asyncio.sleep(0.05)
        if cuts.done() and len(confirmed) >= 600:
            break
    with contextlib.suppress(asyncio.CancelledError):
        await cuts
    assert proxy.cuts == 3
    await wait_until(lambda: set(confirmed) <= set(consumed), timeout_s=60)
    lost = set(confirmed) - set(consumed)
    assert not lost
    duplicates = len(consumed) - len(set(consumed))
    print(f"confirmed={len(confirmed)} unconfirmed={unconfirmed} duplicates={duplicates}")


async def test_handlers_finishing_out_of_order_settle_each_message_once(
    rabbit: BusFactory,
) -> None:
    """Many concurrent handlers finishing in random order, some failing: the coalesced acks
    never name a tag twice, so the broker keeps the channel open and redelivers nothing."""
    bus = await rabbit.make(BusSettings(prefetch=200, retry_delays_s=(0.2,)))
    spec = rabbit.spec()
    await bus.declare(spec)
    sent = [envelope(n) for n in range(3000)]
    failing = {item.id for item in sent[::97]}  # each goes once through the retry queue
    await bus.publish_many([(item, rabbit.key()) for item in sent])
    seen: dict[str, list[Delivery]] = {}
    rng = random.Random(7)
    finished = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        seen.setdefault(delivery.envelope.id, []).append(delivery)
        for _ in range(rng.randrange(30)):  # a different amount of work each: out of order
            await asyncio.sleep(0)
        if delivery.envelope.id in failing and delivery.attempt == 1:
            raise RetryableError("fails once")
        if sum(len(d) for d in seen.values()) == len(sent) + len(failing):
            finished.set()

    await bus.consume(spec.name, handler)
    await asyncio.wait_for(finished.wait(), timeout=60)
    twice = [i for i, got in seen.items() if len(got) != (2 if i in failing else 1)]
    redelivered = [d for got in seen.values() for d in got if d.redelivered]
    print(
        f"out-of-order settlement: {len(sent)} messages, {len(failing)} retried once, "
        f"{len(twice)} processed a wrong number of times, {len(redelivered)} redelivered"
    )
    assert twice == []
    assert redelivered == []
    await bus.close(grace_s=5)
    depths = {d.queue: d.ready for d in await (await rabbit.make()).depths()}
    assert depths.get(spec.name, 0) == 0
