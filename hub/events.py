"""The outbox relay: publishes every committed FHIR write as ``fhir.<Type>.<change>`` on the
events exchange, with confirms, and only then removes it from the outbox. A crash between the
commit and the publish loses nothing: the events are still in the outbox at the next start (a
crash after the publish and before the removal sends them again, so consumers see at-least-once
delivery; the ``resource-version`` header tells duplicates apart)."""

import asyncio
import logging

import orjson

from hub.bus.base import Bus
from hub.bus.topology import EVENTS
from hub.envelope import Envelope
from hub.errors import BusError
from hub.logs import log_event
from hub.tasks import cancel, wait_event
from store.resources import OutboxEvent, ResourceStore

log = logging.getLogger(__name__)
BATCH = 500


def event_envelope(event: OutboxEvent) -> Envelope:
    body = event.body
    if body is None:  # a deletion: say what was deleted
        body = orjson.dumps({"resourceType": event.type, "id": event.id})
    return Envelope(
        type=event.topic,
        source="fhir-store",
        content_type="application/fhir+json",
        body=body,
        headers={
            "resource-type": event.type,
            "resource-id": event.id,
            "resource-version": f"{event.type}/{event.id}/_history/{event.version}",
        },
    )


class EventRelay:
    def __init__(self, bus: Bus, resources: ResourceStore, idle_s: float = 1.0) -> None:
        self.bus, self.resources, self.idle_s = bus, resources, idle_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop at once: whatever is still in the outbox is published at the next start."""
        await cancel(self._task)
        self._task = None

    async def drain(self) -> int:
        """Publish every pending event; returns how many were published."""
        published = 0
        while events := await self.resources.pending_events(BATCH):
            await self.bus.publish_many([(event_envelope(e), e.topic) for e in events], EVENTS)
            await self.resources.events_published(events)
            published += len(events)
        return published

    async def _run(self) -> None:
        committed = self.resources.committed()
        while True:
            await wait_event(committed, self.idle_s)
            committed.clear()
            try:
                await self.drain()
            except BusError as exc:  # the bus is down: the events wait in the outbox
                log_event(log, "relay_waiting", error=type(exc).__name__)
                await asyncio.sleep(self.idle_s)
