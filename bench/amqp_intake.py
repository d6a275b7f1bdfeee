"""AMQP intake benchmark: FHIR resources a system publishes to RabbitMQ (plain FHIR JSON, key
``fhir.Observation``, a reply asked for), taken, archived, stored and answered by the hub, against
the same resources created through the hub's FHIR service in the same process with the same
concurrency (no broker, no archive): the ratio is what the AMQP path costs. The publishing
system runs in a process of its own. The AMQP run also carries what every write sets off (the
events relayed, the lab and the subscription matcher at work on them): its hub CPU per message
says what the whole path costs; the service run stops at the last commit. Prints messages/s
and p50/p99 from publish to reply, median of the runs. Not a test: it prints figures.

    python bench/amqp_intake.py [--messages 2000] [--runs 3]

Broker: JIANHU_BENCH_AMQP_URL or JIANHU_TEST_AMQP_URL, else scripts/rabbitmq-local.sh starts one.
"""

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import aio_pika
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bus import broker_url, delete_queues
from hub.fhir.interaction import FhirRequest
from hub.fhir.scopes import Principal
from hub.fhir.service import FhirService
from hub.runtime import Runtime
from hub.settings import load_settings

SENDERS = {"EMR": {"users": ["guest"], "accepts": ["fhir.*"]}}


def observation(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "血糖"}]},
        "subject": {"reference": f"Patient/p{n % 500}"},
        "effectiveDateTime": "2026-12-03T08:00:00+08:00",
        "valueQuantity": {"value": 4.0 + n % 40 / 10, "unit": "mmol/L"},
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def system_process(url: str, n: int, rate: float = 0.0) -> dict[str, float]:
    """The publishing system in a process of its own, as it is in a hospital: its work is not
    counted against the hub's event loop."""
    return asyncio.run(over_amqp(url, n, rate))


async def over_amqp(url: str, n: int, rate: float = 0.0) -> dict[str, float]:
    """``n`` messages as fast as the broker takes them, or ``rate`` a second (the latency of a
    hub that keeps up, not of a queue)."""
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.declare_queue("", exclusive=True)
        exchange = await channel.get_exchange("jianhu.inbound")
        sent: dict[str, float] = {}
        latencies: list[float] = []
        refused = 0
        done = asyncio.Event()

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal refused
            latencies.append(time.perf_counter() - sent[message.correlation_id or ""])
            refused += (message.headers or {}).get("x-jianhu-outcome") != "accepted"
            if len(latencies) == n:
                done.set()

        await replies.consume(on_reply, no_ack=True)
        started = time.perf_counter()
        window = asyncio.Semaphore(256)

        async def publish(i: int) -> None:
            if rate:
                await asyncio.sleep(started + i / rate - time.perf_counter())
            async with window:
                message_id = str(uuid.uuid4())
                sent[message_id] = time.perf_counter()
                await exchange.publish(
                    aio_pika.Message(
                        orjson.dumps(observation(i)),
                        content_type="application/fhir+json",
                        message_id=message_id,
                        app_id="EMR",
                        user_id="guest",
                        reply_to=replies.name,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key="fhir.Observation",
                )

        await asyncio.gather(*(publish(i) for i in range(n)))
        await asyncio.wait_for(done.wait(), timeout=600)
        elapsed = time.perf_counter() - started
    if refused:
        raise RuntimeError(f"{refused} messages were refused")
    return rates(n, elapsed, latencies)


async def in_process(runtime: Runtime, n: int, concurrency: int) -> dict[str, float]:
    service = FhirService(runtime.resources, runtime.settings.fhir, None, runtime.terminology)
    principal = Principal.of("system", "bench", "system/*.*")
    window = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def create(i: int) -> None:
        async with window:
            began = time.perf_counter()
            request = FhirRequest("POST", "Observation", principal, body=observation(i))
            response = await service.dispatch(request)
            assert response.status == 201
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(create(i) for i in range(n)))
    return rates(n, time.perf_counter() - started, latencies)


def rates(n: int, elapsed: float, latencies: list[float]) -> dict[str, float]:
    return {
        "per_s": n / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def one_run(
    url: str, n: int, rate: float
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(
            data_dir=Path(data_dir), amqp_url=url, mllp_port=0, amqp_intake={"senders": SENDERS}
        )
        runtime = Runtime(settings)
        await delete_queues(url, [route.queue for route in runtime.table.routes])
        await runtime.start()
        try:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                cpu = cpu_seconds()
                loop = asyncio.get_running_loop()
                system = loop.run_in_executor(pool, system_process, url, n)
                amqp = await system | {"cpu_ms": (cpu_seconds() - cpu) * 1000 / n}
                cpu = cpu_seconds()
                paced_n = max(1, int(rate * 10))
                system = loop.run_in_executor(pool, system_process, url, paced_n, rate)
                paced = await system | {"cpu_ms": (cpu_seconds() - cpu) * 1000 / paced_n}
            cpu = cpu_seconds()
            direct = await in_process(runtime, n, settings.bus.prefetch)
            direct["cpu_ms"] = (cpu_seconds() - cpu) * 1000 / n
        finally:
            await runtime.stop()
            await delete_queues(url, [route.queue for route in runtime.table.routes])
    return amqp, paced, direct


def cpu_seconds() -> float:
    """The hub's process, every thread (the store's writers too); the publisher has its own."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0, help="paced run, messages/s")
    args = parser.parse_args()
    url = broker_url()
    amqp_runs, paced_runs, direct_runs = [], [], []
    for _ in range(args.runs):
        amqp, paced, direct = await one_run(url, args.messages, args.rate)
        amqp_runs.append(amqp)
        paced_runs.append(paced)
        direct_runs.append(direct)
    print(f"FHIR Observations, {args.messages} per run, median of {args.runs} runs")
    for name, runs in (
        ("over AMQP (publish to reply)", amqp_runs),
        (f"over AMQP at {args.rate:.0f}/s", paced_runs),
        ("FHIR service", direct_runs),
    ):
        print(
            f"  {name:30} {median(runs, 'per_s'):8.0f} msg/s   "
            f"p50 {median(runs, 'p50_ms'):7.1f} ms   p99 {median(runs, 'p99_ms'):7.1f} ms   "
            f"hub CPU {median(runs, 'cpu_ms'):4.1f} ms/msg"
        )
    ratio = median(amqp_runs, "per_s") / median(direct_runs, "per_s")
    print(f"  AMQP / service throughput: {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
