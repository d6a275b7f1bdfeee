"""The bus contract, run on both buses: the embedded one and the real RabbitMQ."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from hub.base.envelope import Envelope
from hub.base.errors import PermanentError, RetryableError, TopologyError, UnroutableError
from hub.bus.base import Bus, Delivery
from hub.bus.settings import BusSettings
from hub.bus.topology import EVENTS
from tests.conftest import BusFactory

WAIT_S = 15.0


def envelope(n: int = 0) -> Envelope:
    return Envelope(
        type="hl7v2.ORU.R01",
        source="LIS",
        content_type="x-application/hl7-v2+er7",
        body=f"MSH|^~\\&|LIS|||||||ORU^R01|{n}|P|2.5\r".encode(),
    )


class Recorder:
    """A handler that records every delivery and fails as told."""

    def __init__(self, fail: Callable[[Delivery], Exception | None] = lambda _: None) -> None:
        self.fail = fail
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self.done: list[Delivery] = []
        self._handled = asyncio.Condition()

    async def __call__(self, delivery: Delivery) -> None:
        await self.deliveries.put(delivery)
        error = self.fail(delivery)
        if error is not None:
            raise error
        async with self._handled:
            self.done.append(delivery)
            self._handled.notify_all()

    async def next(self, timeout_s: float = WAIT_S) -> Delivery:
        return await asyncio.wait_for(self.deliveries.get(), timeout_s)

    async def handled(self, count: int, timeout_s: float = WAIT_S) -> None:
        """Until ``count`` deliveries were handled without error (told, not polled)."""
        await self.handled_until(lambda: len(self.done) >= count, timeout_s)

    async def handled_until(self, done: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        """Until what was handled satisfies ``done``; each delivery handled tells."""
        async with asyncio.timeout(timeout_s), self._handled:
            await self._handled.wait_for(done)


async def wait_until(predicate: Callable[[], object], timeout_s: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def wait_until_async(
    predicate: Callable[[], Awaitable[object]], timeout_s: float = WAIT_S
) -> None:
    """``wait_until`` for a condition that must itself be awaited (a store query)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def dead_ids(bus: Bus, queue: str) -> list[str]:
    return [dead.envelope.id for dead in await bus.dead_letters(queue)]


async def test_publish_and_consume(buses: BusFactory) -> None:
    bus = await buses.make()
    spec = buses.spec()
    await bus.declare(spec)
    sent = [envelope(n) for n in range(5)]
    for item in sent:
        await bus.publish(item, buses.key("oru"))
    recorder = Recorder()
    await bus.consume(spec.name, recorder)
    got = [await recorder.next() for _ in sent]
    assert [d.envelope for d in got] == sent  # the body and metadata round-trip exactly
    assert {d.routing_key for d in got} == {buses.key("oru")}
    assert all(d.attempt == 1 and not d.redelivered for d in got)
    await recorder.handled(5)
    assert len(recorder.done) == 5


async def test_topic_routing_reaches_every_bound_queue_only(buses: BusFactory) -> None:
    bus = await buses.make()
    lab = buses.spec("lab", EVENTS, f"{buses.prefix}.Observation.*")
    everything = buses.spec("all", EVENTS, f"{buses.prefix}.#")
    await bus.declare(lab)
    await bus.declare(everything)
    await bus.publish(envelope(1), buses.key("Observation.created"), exchange=EVENTS)
    await bus.publish(envelope(2), buses.key("Patient.updated"), exchange=EVENTS)
    lab_rec, all_rec = Recorder(), Recorder()
    await bus.consume(lab.name, lab_rec)
    await bus.consume(everything.name, all_rec)
    assert (await lab_rec.next()).routing_key == buses.key("Observation.created")
    keys = {(await all_rec.next()).routing_key for _ in range(2)}
    assert keys == {buses.key("Observation.created"), buses.key("Patient.updated")}
    # A queue hands out in order: had Patient.updated reached the lab's queue, it would come
    # before a later Observation, so the next one the lab gets is that Observation.
    later = envelope(3)
    await bus.publish(later, buses.key("Observation.created"), exchange=EVENTS)
    assert (await lab_rec.next()).envelope.id == later.id


async def test_batch_publish_is_confirmed_and_complete(buses: BusFactory) -> None:
    bus = await buses.make(BusSettings(publish_window=32, retry_delays_s=(0.2,)))
    spec = buses.spec()
    await bus.declare(spec)
    sent = [envelope(n) for n in range(300)]
    await bus.publish_many([(item, buses.key()) for item in sent])
    depth = {d.queue: d.ready for d in await bus.depths()}
    assert depth[spec.name] == 300
    recorder = Recorder()
    await bus.consume(spec.name, recorder)
    await recorder.handled(300)
    assert len(recorder.done) == 300
    assert {d.envelope.id for d in recorder.done} == {item.id for item in sent}


async def test_ack_only_after_the_handler_succeeds(buses: BusFactory) -> None:
    """A handler still running when the bus shuts down has not acked: the message comes back."""
    bus = await buses.make()
    spec = buses.spec()
    await bus.declare(spec)
    release = asyncio.Event()
    started: asyncio.Queue[Delivery] = asyncio.Queue()

    async def slow(delivery: Delivery) -> None:
        await started.put(delivery)
        await release.wait()

    await bus.publish(envelope(), buses.key())
    await bus.consume(spec.name, slow)
    await asyncio.wait_for(started.get(), WAIT_S)
    await bus.close(grace_s=0.1)  # the handler is still blocked past the grace time
    release.set()
    second = await buses.make()
    recorder = Recorder()
    await second.consume(spec.name, recorder)
    again = await recorder.next()
    assert again.redelivered
    await recorder.handled(1)
    assert len(recorder.done) == 1


async def test_graceful_close_lets_in_flight_handlers_finish(buses: BusFactory) -> None:
    bus = await buses.make()
    spec = buses.spec()
    await bus.declare(spec)
    finished: list[str] = []
    started = asyncio.Event()

    async def slow(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(delivery.envelope.id)

    sent = envelope()
    await bus.publish(sent, buses.key())
    await bus.consume(spec.name, slow)
    await asyncio.wait_for(started.wait(), WAIT_S)
    await bus.close(grace_s=5)
    assert finished == [sent.id]
    second = await buses.make()
    assert {d.queue: d.ready for d in await second.depths()}.get(spec.name, 0) == 0


async def test_retryable_error_is_redelivered_after_its_delay_then_dead(
    buses: BusFactory,
) -> None:
    bus = await buses.make()
    spec = buses.spec()
    await bus.declare(spec)
    recorder = Recorder(lambda d: RetryableError(f"LIS busy, attempt {d.attempt}"))
    await bus.publish(envelope(), buses.key("retry"))
    loop = asyncio.get_running_loop()
    await bus.consume(spec.name, recorder)
    first = await recorder.next()
    t0 = loop.time()
    second = await recorder.next()
    t1 = loop.time()
    third = await recorder.next()
    t2 = loop.time()
    assert [first.attempt, second.attempt, third.attempt] == [1, 2, 3]
    assert second.routing_key == third.routing_key == buses.key("retry")  # kept across retries
    assert t1 - t0 >= 0.15  # first delay 0.2 s
    assert t2 - t1 >= 0.35  # second delay 0.4 s: growing
    dead = await _wait_for_dead(bus, spec.name, 1)
    assert recorder.deliveries.empty()  # 2 delays configured: 3 attempts, then dead
    assert dead[0].envelope.id == first.envelope.id
    assert dead[0].attempts == 3
    assert dead[0].error_class == "hub.base.errors.RetryableError"
    assert "attempt 3" in dead[0].error


async def test_permanent_error_goes_straight_to_dead_letter(buses: BusFactory) -> None:
    bus = await buses.make()
    spec = buses.spec()
    await bus.declare(spec)
    recorder = Recorder(lambda _: PermanentError("PID-3 missing"))
    sent = envelope()
    await bus.publish(sent, buses.key())
    await bus.consume(spec.name, recorder)
    assert (await recorder.next()).attempt == 1
    dead = await _wait_for_dead(bus, spec.name, 1)
    assert dead[0].envelope == sent
    assert dead[0].error == "PID-3 missing"
    assert recorder.deliveries.empty()  # dead at the first attempt: it can come back no more


async def test_unexpected_exception_counts_as_retryable(buses: BusFactory) -> None:
    bus = await buses.make(BusSettings(retry_delays_s=(0.1,), handler_timeout_s=5))
    spec = buses.spec()
    await bus.declare(spec)
    recorder = Recorder(lambda d: KeyError("OBX-5") if d.attempt == 1 else None)
    await bus.publish(envelope(), buses.key())
    await bus.consume(spec.name, recorder)
    await recorder.handled(1)
    assert len(recorder.done) == 1
    assert recorder.done[0].attempt == 2
    assert await dead_ids(bus, spec.name) == []


async def test_redrive_puts_dead_letters_back(buses: BusFactory) -> None:
    bus = await buses.make()
    spec = buses.spec()
    await bus.declare(spec)
    broken = {"yes": True}
    recorder = Recorder(lambda _: PermanentError("mapping bug") if broken["yes"] else None)
    sent = [envelope(n) for n in range(3)]
    for item in sent:
        await bus.publish(item, buses.key("adt"))
    await bus.consume(spec.name, recorder)
    await _wait_for_dead(bus, spec.name, 3)
    broken["yes"] = False  # the bug is fixed
    assert await bus.redrive(spec.name, [sent[1].id]) == 1
    await recorder.handled(1)
    assert len(recorder.done) == 1
    assert recorder.done[0].envelope.id == sent[1].id
    assert recorder.done[0].routing_key == buses.key("adt")
    assert recorder.done[0].attempt == 1
    assert sorted(await dead_ids(bus, spec.name)) == sorted([sent[0].id, sent[2].id])
    assert await bus.redrive(spec.name) == 2
    await recorder.handled(3)
    assert len(recorder.done) == 3
    assert await dead_ids(bus, spec.name) == []


async def test_listing_dead_letters_does_not_consume_them(buses: BusFactory) -> None:
    bus = await buses.make()
    spec = buses.spec()
    await bus.declare(spec)
    await bus.publish(envelope(), buses.key())
    await bus.consume(spec.name, Recorder(lambda _: PermanentError("bad")))
    first = await _wait_for_dead(bus, spec.name, 1)
    for _ in range(3):
        assert [d.envelope.id for d in await bus.dead_letters(spec.name)] == [first[0].envelope.id]
    shown = await bus.dead_letter(spec.name, first[0].envelope.id)
    assert shown.error == "bad"


async def test_publish_to_a_missing_exchange_raises(buses: BusFactory) -> None:
    bus = await buses.make()
    with pytest.raises(TopologyError):
        await bus.publish(envelope(), buses.key(), exchange="jianhu.no-such-exchange")
    spec = buses.spec()  # the bus still works afterwards
    await bus.declare(spec)
    await bus.publish(envelope(), buses.key())


async def test_unroutable_publish_raises(buses: BusFactory) -> None:
    bus = await buses.make()
    with pytest.raises(UnroutableError):
        await bus.publish(envelope(), f"{buses.prefix}-nobody.listens")


async def test_consumer_cut_off_mid_message_gets_it_redelivered(buses: BusFactory) -> None:
    proxy = await buses.proxy() if buses.kind == "rabbit" else None
    bus = await buses.make(via_proxy=proxy)
    spec = buses.spec()
    await bus.declare(spec)
    sent = envelope()
    await bus.publish(sent, buses.key())
    entered = asyncio.Event()
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery)
        if len(seen) == 1:
            entered.set()
            await asyncio.sleep(1.0)  # the link is cut while this message is in hand

    await bus.consume(spec.name, handler)
    await asyncio.wait_for(entered.wait(), WAIT_S)
    if proxy is not None:
        proxy.cut()  # the robust connection reconnects and consumes again
    else:
        await bus.abort()  # type: ignore[attr-defined]  # the embedded bus's crash
        bus = await buses.make()
        await bus.consume(spec.name, handler)
    await wait_until(lambda: len(seen) >= 2, timeout_s=30)
    assert seen[1].envelope.id == sent.id
    assert seen[1].redelivered


async def _wait_for_dead(bus: Bus, queue: str, count: int) -> list:  # type: ignore[type-arg]
    found: list = []  # type: ignore[type-arg]

    async def enough() -> bool:
        found[:] = await bus.dead_letters(queue)
        return len(found) >= count

    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not await enough():
        assert loop.time() < deadline, f"{len(found)} dead letters, expected {count}"
        await asyncio.sleep(0.05)
    return found
