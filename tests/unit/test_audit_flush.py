"""Two flushes of the audit trail at once (the background flusher and a trace's) write each
event once and lose none recorded meanwhile."""

import asyncio
from typing import Any, cast

from hub.fhir.audit import AuditTrail
from store.resources import ResourceStore


class SlowStore:
    def __init__(self) -> None:
        self.written: list[Any] = []
        self.gate = asyncio.Event()

    async def append_audit(self, events: list[Any]) -> list[Any]:
        await self.gate.wait()
        self.written.extend(events)
        return events


async def test_concurrent_flushes_write_each_event_once() -> None:
    store = SlowStore()
    trail = AuditTrail(cast(ResourceStore, store))
    trail.record({"id": "1"})
    trail.record({"id": "2"})
    first = asyncio.create_task(trail.flush())
    second = asyncio.create_task(trail.flush())
    await asyncio.sleep(0)  # both have started; the store holds the first write
    trail.record({"id": "3"})  # recorded while a write is under way
    store.gate.set()
    await asyncio.gather(first, second)
    assert [e["id"] for e in store.written] == ["1", "2", "3"]
