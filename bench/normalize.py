"""Normalize-and-persist benchmark, in one process on the embedded store: the HL7 normalizer's
handler takes ORU^R01 messages (10 OBX, Chinese text) as the bus would hand them over (up to
``--concurrency`` at once), maps them and writes their resources; then the same messages are
replayed (a new attempt each), which must write no new version at all. A ticker measures how
late the event loop runs it meanwhile (its lag). Not a test: it prints figures.

    python bench/normalize.py [--messages 10000] [--concurrency 64]
"""

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mllp import oru, percentile
from hub.base.correlation import Origin, within
from hub.base.envelope import HL7V2_ER7, Envelope, new_id
from hub.base.metrics import HubMetrics
from hub.bus.base import Bus, Delivery
from hub.bus.embedded import EmbeddedBus
from hub.hl7v2.message import Message
from hub.hl7v2.normalizer import normalizer
from hub.hl7v2.offload import BigMessages
from hub.settings import Settings, load_settings
from store.archive import ArchivedMessage, MessageArchive
from store.resources import ResourceStore
from store.sqlite import SqliteStore

TICK_S = 0.001


@dataclass
class Services:
    resources: ResourceStore
    archive: MessageArchive
    bus: Bus
    settings: Settings
    big_messages: BigMessages


class LagTicker:
    """How late the loop runs a callback due every millisecond."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.lags_ms.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[float]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.lags_ms

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            self.lags_ms.append(max(0.0, (loop.time() - due) * 1000))


async def archived(archive: MessageArchive, number: int) -> tuple[ArchivedMessage, Delivery]:
    """A message as the listener leaves it: claimed and published (attempt 1)."""
    raw = oru(number)
    message = Message(raw.decode())
    now = datetime.now(UTC)
    record = ArchivedMessage(
        id=new_id(),
        received_at=now,
        sender_application="LIS",
        sender_facility="JHYY",
        peer="127.0.0.1",
        message_type="ORU^R01",
        control_id=message.control_id,
        charset="utf-8",
        raw=raw,
        text=raw.decode(),
        status="published",
        content_hash=message.content_hash(),
        claimed_by="bench",
        claimed_at=now,
    )
    await archive.add(record)
    return record, delivery(record, 1)


def delivery(record: ArchivedMessage, attempt: int) -> Delivery:
    envelope = Envelope(
        type="hl7v2.ORU.R01",
        source="LIS",
        content_type=HL7V2_ER7,
        body=record.text.encode(),
        headers={"archive-id": record.id, "charset": "utf-8", "attempt": str(attempt)},
    )
    return Delivery(envelope, "hl7v2.normalizer", "hl7v2.ORU.R01", 1, False)


async def run_phase(
    handle: object, deliveries: list[Delivery], concurrency: int, ticker: LagTicker
) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Delivery) -> None:
        envelope = item.envelope
        async with gate:
            with within(Origin(envelope.correlation_id or envelope.id, envelope.source)):
                await handle(item)  # type: ignore[operator]  # under its origin, as the bus does

    ticker.start()
    began = time.perf_counter()
    await asyncio.gather(*(one(item) for item in deliveries))
    elapsed = time.perf_counter() - began
    return len(deliveries) / elapsed, await ticker.stop()


def versions(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM resource_version").fetchone()[0])
    finally:
        db.close()


async def main_async(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="jianhu-normalize-bench-"))
    store = SqliteStore(directory / "jianhu.sqlite3")
    await store.open()
    settings = load_settings(data_dir=directory)
    bus = EmbeddedBus(directory / "bus.sqlite3", settings.bus, HubMetrics().bus)
    await bus.start()
    big = BigMessages("", directory)
    handle = normalizer(Services(store.resources, store.archive, bus, settings, big))
    ticker = LagTicker()
    rows: list[tuple[str, str]] = []
    try:
        records = [await archived(store.archive, n) for n in range(args.messages)]
        await run_phase(handle, [d for _, d in records[:200]], args.concurrency, ticker)  # warm
        fresh = [d for _, d in records[200:]]
        rate, lags = await run_phase(handle, fresh, args.concurrency, ticker)
        rows += [
            (f"normalized and stored, {len(fresh):,} new ORU^R01, msg/s", f"{rate:,.0f}"),
            ("event-loop lag meanwhile, p50 / p99 ms", _p50_p99(lags)),
        ]
        print(f"new: {rate:,.0f} msg/s, lag {_p50_p99(lags)} ms", flush=True)
        before = versions(store.path)
        replays = []
        for record, _ in records:
            attempt = await store.archive.new_attempt(record.id, "bench")
            replays.append(delivery(replace(record, attempts=attempt), attempt))
        rate, lags = await run_phase(handle, replays, args.concurrency, ticker)
        added = versions(store.path) - before
        rows += [
            (f"replayed, {len(replays):,} already stored, msg/s", f"{rate:,.0f}"),
            ("event-loop lag meanwhile, p50 / p99 ms", _p50_p99(lags)),
            ("new versions written by the replay", f"{added:,}"),
        ]
        print(f"replay: {rate:,.0f} msg/s, lag {_p50_p99(lags)} ms, {added} new versions")
    finally:
        await bus.close(grace_s=0)
        await store.close()
    print(f"\nORU^R01 with 10 OBX (12 resources each), {args.concurrency} at once, SQLite\n")
    print("| figure | value |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def _p50_p99(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {percentile(values, 0.99):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    uvloop.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
