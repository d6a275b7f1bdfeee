"""Destinations benchmark: ADT^A01 messages from the HIS, sent over MLLP one after another (each
waits for its ACK, as a HIS does), fanned out by the hub to three MLLP destinations (python-hl7
receivers answering AA). Prints messages/s (until the last destination has the last message)
and p50/p99 from the send to the last destination's receipt, for a run as fast as the hub
takes them and a run paced at ``--rate``. The sender and the receivers each run in a process
of their own; the hub is one process with the embedded defaults (``--bus rabbit``: RabbitMQ).
Not a test: it prints figures.

    python bench/destinations.py [--messages 1000] [--rate 50] [--bus embedded|rabbit]
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bus import broker_url, delete_queues
from hub.bus.settings import BusSettings
from hub.runtime import Runtime
from hub.settings import load_settings

SYSTEMS = ("lis", "pacs", "emr")
ADT = (
    "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20261203080000||ADT^A01^ADT_A01|{control}|P|2.5\r"
    "EVN|A01|20261203080000\r"
    "PID|1||P{patient}^^^JHYY^PI||患者^{patient}||19800101|M\r"
    "PV1|1|I|ICU^01^02\r"
)


def receivers_process(ports: list[int], expected: int, ready: Any) -> dict[str, dict[str, float]]:
    """Three receivers; returns, per system, when each control id arrived (wall clock)."""

    async def run() -> dict[str, dict[str, float]]:
        arrived: dict[str, dict[str, float]] = {system: {} for system in SYSTEMS}
        done = asyncio.Event()

        def receiver(system: str) -> Any:
            async def handle(reader: Any, writer: Any) -> None:
                try:
                    while not writer.is_closing():
                        message = await reader.readmessage()
                        arrived[system][str(message.segment("MSH")[10])] = time.time()
                        writer.writemessage(message.create_ack())
                        await writer.drain()
                        if all(len(got) >= expected for got in arrived.values()):
                            done.set()
                except asyncio.IncompleteReadError:
                    pass

            return handle

        servers = [
            await hl7.mllp.start_hl7_server(receiver(system), "127.0.0.1", port, encoding="utf-8")
            for system, port in zip(SYSTEMS, ports, strict=True)
        ]
        ready.set()
        await asyncio.wait_for(done.wait(), timeout=900)
        for server in servers:
            server.close()
        return arrived

    return asyncio.run(run())


def sender_process(port: int, count: int, first: int, rate: float) -> dict[str, float]:
    """A HIS: each message sent when the one before is acknowledged (and not before its time
    when paced); returns when each control id was sent."""

    async def run() -> dict[str, float]:
        sent: dict[str, float] = {}
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port, encoding="utf-8")
        started = time.perf_counter()
        for n in range(count):
            if rate:
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            control = f"B{first + n:07d}"
            sent[control] = time.time()
            writer.writemessage(hl7.parse(ADT.format(control=control, patient=n % 200)))
            await writer.drain()
            await reader.readmessage()
        writer.close()
        return sent

    return asyncio.run(run())


def free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


def destinations_json(ports: list[int]) -> str:
    return json.dumps(
        [
            {
                "name": f"his-adt-to-{system}",
                "transport": {"kind": "mllp", "host": "127.0.0.1", "port": port},
                "filter": {"message_types": ["ADT"], "senders": ["HIS"]},
            }
            for system, port in zip(SYSTEMS, ports, strict=True)
        ]
    )


async def one_run(args: argparse.Namespace, rate: float, first: int) -> dict[str, float]:
    ports = free_ports(3)
    amqp = broker_url() if args.bus == "rabbit" else ""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config"
        config.mkdir()
        (config / "destinations.json").write_text(destinations_json(ports), encoding="utf-8")
        settings = load_settings(
            data_dir=Path(folder) / "data",
            config_dir=config,
            amqp_url=amqp,
            mllp_port=0,
            bus=BusSettings(retry_delays_s=(1.0, 5.0)),
        )
        runtime = Runtime(settings)
        queues = [route.queue for route in runtime.table.routes]
        if amqp:
            await delete_queues(amqp, queues)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as pool, context.Manager() as manager:
            loop = asyncio.get_running_loop()
            ready = manager.Event()
            receiving = loop.run_in_executor(pool, receivers_process, ports, args.messages, ready)
            await loop.run_in_executor(None, ready.wait)
            await runtime.start()
            port = runtime.listeners[0].port
            sent = await loop.run_in_executor(
                pool, sender_process, port, args.messages, first, rate
            )
            arrived = await receiving
            await runtime.stop()
        if amqp:
            await delete_queues(amqp, queues)
    latencies = [max(arrived[s][c] for s in SYSTEMS) - at for c, at in sent.items()]
    last = max(max(times.values()) for times in arrived.values())
    return {
        "per_s": len(sent) / (last - min(sent.values())),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="the paced run, messages/s")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bus", choices=("embedded", "rabbit"), default="embedded")
    args = parser.parse_args()
    fast, paced = [], []
    for run in range(args.runs):
        fast.append(await one_run(args, 0.0, run * 2 * args.messages))
        paced.append(await one_run(args, args.rate, (run * 2 + 1) * args.messages))
    print(
        f"ADT^A01 from the HIS to three MLLP destinations, {args.messages} messages, "
        f"{args.bus} bus, median of {args.runs} runs"
    )
    for name, runs in (("as fast as taken", fast), (f"paced at {args.rate:.0f}/s", paced)):
        print(
            f"  {name:18} {statistics.median(r['per_s'] for r in runs):7.0f} msg/s   "
            f"send to last AA: p50 {statistics.median(r['p50_ms'] for r in runs):7.1f} ms   "
            f"p99 {statistics.median(r['p99_ms'] for r in runs):7.1f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
