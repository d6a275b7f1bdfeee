"""Bus benchmark: the hub's RabbitMQ bus against raw aio-pika, same broker, same run.

Publishes and consumes N persistent 1 KB messages through a quorum queue with publisher
confirms, three ways each: publish only, consume only (a pre-filled queue), and end to end
(consumer running while publishing; clock stops when the last message is handled).
Prints the median of the runs and the ratio bus/raw. Not a test: it prints figures.

    python bench/bus.py [--messages 20000] [--runs 3]

Broker: JIANHU_BENCH_AMQP_URL or JIANHU_TEST_AMQP_URL, else scripts/rabbitmq-local.sh starts one.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.base.envelope import Envelope
from hub.base.metrics import HubMetrics
from hub.bus.base import Delivery
from hub.bus.rabbit import RabbitBus
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND, QueueSpec, dead_queue_name
from tests.broker import find_broker

BODY = (b"OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|12-16|N|||F\r" * 20)[:1024]
SETTINGS = BusSettings(prefetch=200, publish_window=256)
Rates = dict[str, float]


async def delete_queues(url: str, queues: list[str]) -> None:
    """Start from empty queues: a durable queue keeps what an earlier run left behind, and a
    benchmark that drains someone else's backlog measures nothing."""
    connection = await aio_pika.connect(url)
    async with connection:
        for name in queues:
            for queue in (name, dead_queue_name(name)):
                channel = await connection.channel()
                with contextlib.suppress(aio_pika.exceptions.ChannelClosed):  # not there
                    await channel.queue_delete(queue)
                if not channel.is_closed:
                    await channel.close()


def broker_url() -> str:
    url = os.environ.get("JIANHU_BENCH_AMQP_URL") or os.environ.get("JIANHU_TEST_AMQP_URL")
    return url or find_broker().url


def envelopes(n: int) -> list[Envelope]:
    return [
        Envelope(
            type="hl7v2.ORU.R01", source="LIS", content_type="x-application/hl7-v2+er7", body=BODY
        )
        for _ in range(n)
    ]


async def timed(work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


# --- raw aio-pika: the same things the bus does, written directly ---------------------------


async def raw_run(url: str, n: int) -> Rates:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        name = f"bench.raw.{uuid.uuid4().hex[:8]}"
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        exchange = channel.default_exchange
        bodies = [BODY] * n

        async def publish() -> None:
            window = SETTINGS.publish_window
            for start in range(0, n, window):
                await asyncio.gather(
                    *(
                        exchange.publish(
                            aio_pika.Message(b, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                            routing_key=name,
                        )
                        for b in bodies[start : start + window]
                    )
                )

        async def consume(expected: int) -> None:
            done = asyncio.Event()
            seen = 0
            consumer_channel = await connection.channel()
            await consumer_channel.set_qos(prefetch_count=SETTINGS.prefetch)
            q = await consumer_channel.get_queue(name)

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                nonlocal seen
                await message.ack()
                seen += 1
                if seen == expected:
                    done.set()

            tag = await q.consume(on_message)
            await done.wait()
            await q.cancel(tag)
            await consumer_channel.close()

        publish_s = await timed(publish)
        consume_s = await timed(lambda: consume(n))
        e2e_s = await timed(lambda: asyncio.gather(consume(n), publish()))  # type: ignore[arg-type,return-value]
        await queue.delete(if_unused=False, if_empty=False)
    return {"publish": n / publish_s, "consume": n / consume_s, "end_to_end": n / e2e_s}


# --- the hub's bus ---------------------------------------------------------------------------


async def bus_run(url: str, n: int) -> Rates:
    bus = RabbitBus(url, SETTINGS, HubMetrics().bus)
    await bus.start()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    spec = QueueSpec(f"{prefix}.work", INBOUND, (f"{prefix}.#",))
    await bus.declare(spec)
    key = f"{prefix}.oru"

    async def publish() -> None:
        await bus.publish_many([(env, key) for env in envelopes(n)])

    async def consume(expected: int) -> None:
        done = asyncio.Event()
        seen = 0

        async def handler(_: Delivery) -> None:
            nonlocal seen
            seen += 1
            if seen == expected:
                done.set()

        await bus.consume(spec.name, handler)
        await done.wait()
        await bus.stop_consuming(grace_s=5)

    publish_s = await timed(publish)
    consume_s = await timed(lambda: consume(n))
    e2e_s = await timed(lambda: asyncio.gather(consume(n), publish()))  # type: ignore[arg-type,return-value]
    channel = await bus.connection.channel()
    for name in (spec.name, dead_queue_name(spec.name)):
        await channel.queue_delete(name)
    await bus.close()
    return {"publish": n / publish_s, "consume": n / consume_s, "end_to_end": n / e2e_s}


def median(runs: list[Rates], key: str) -> float:
    return statistics.median(run[key] for run in runs)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = broker_url()
    raw_runs, bus_runs = [], []
    for run in range(args.runs):  # interleaved, so drift in the machine hits both alike
        raw_runs.append(await raw_run(url, args.messages))
        bus_runs.append(await bus_run(url, args.messages))
        print(f"run {run + 1}: raw {fmt(raw_runs[-1])} | bus {fmt(bus_runs[-1])}", flush=True)
    print(
        f"\n{args.messages} persistent 1 KB messages, quorum queue, confirms, "
        f"prefetch {SETTINGS.prefetch}, window {SETTINGS.publish_window}; "
        f"median of {args.runs} runs (msg/s)"
    )
    print(f"{'':12}{'raw aio-pika':>14}{'jianhu bus':>14}{'bus/raw':>10}")
    for key in ("publish", "consume", "end_to_end"):
        raw, bus = median(raw_runs, key), median(bus_runs, key)
        print(f"{key:12}{raw:>14,.0f}{bus:>14,.0f}{bus / raw:>10.2f}")


def fmt(rates: Rates) -> str:
    return " ".join(f"{k}={v:,.0f}" for k, v in rates.items())


if __name__ == "__main__":
    import uvloop  # the loop `jianhu run` uses; raw and bus both run on it

    uvloop.run(main())
