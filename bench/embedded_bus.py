"""Embedded-bus benchmark: the SQLite-backed bus of the embedded default, both durability modes.

Prints msg/s for batch publishes (100 per commit), single publishes (one commit each) and
consumption (one commit per ack). Not a test: it prints figures.

    python bench/embedded_bus.py [--messages 5000]
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bus import envelopes
from hub.base.metrics import HubMetrics
from hub.bus.base import Delivery
from hub.bus.embedded import EmbeddedBus
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND, QueueSpec

SINGLES = 1000


async def run(synchronous: str, n: int) -> str:
    with tempfile.TemporaryDirectory() as folder:
        bus = EmbeddedBus(
            Path(folder) / "bus.sqlite3",
            BusSettings(embedded_synchronous=synchronous),
            HubMetrics().bus,
        )
        await bus.start()
        await bus.declare(QueueSpec("bench", INBOUND, ("bench.#",)))
        items = [(envelope, "bench.oru") for envelope in envelopes(n + SINGLES)]
        started = time.perf_counter()
        for start in range(0, n, 100):
            await bus.publish_many(items[start : start + 100])
        batch_rate = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for envelope, key in items[n:]:
            await bus.publish(envelope, key)
        single_rate = SINGLES / (time.perf_counter() - started)
        done, seen = asyncio.Event(), 0

        async def handler(_: Delivery) -> None:
            nonlocal seen
            seen += 1
            if seen == n + SINGLES:
                done.set()

        started = time.perf_counter()
        await bus.consume("bench", handler)
        await done.wait()
        consume_rate = (n + SINGLES) / (time.perf_counter() - started)
        await bus.close()
    return f"{synchronous:7}{batch_rate:>16,.0f}{single_rate:>18,.0f}{consume_rate:>12,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    print(
        f"embedded bus, 1 KB envelopes (msg/s)\n{'sync':7}{'batch publish':>16}"
        f"{'single publish':>18}{'consume':>12}"
    )
    for synchronous in ("FULL", "NORMAL"):
        print(asyncio.run(run(synchronous, args.messages)), flush=True)


if __name__ == "__main__":
    main()
