"""The event relay: publishes the store's committed writes as change sets on the events exchange.

The store keeps a high-water mark of what was relayed; the relay reads the versions written
after it, publishes them with confirms, and only then moves the mark. A crash between the
commit and the publish loses nothing (they are read again at the next start); a crash after
the publish and before the mark sends them again, so consumers see at-least-once delivery and
tell duplicates apart by the version each entry carries.

A change set is one bus message for a run of consecutive writes that share a routing key
``fhir.<Type>.<created|updated|deleted>`` and a correlation id: the ten Observations of an
ORU^R01 are one message, not ten, and the 50,000 of a big one are 500. Its body is a FHIR
Bundle of type ``history`` (the resource, ``request`` saying what was done, ``response.etag``
the version written).
Consecutive runs only: the order of the versions across keys is the order they were written,
so a resource's creation is never seen after its update. The set's envelope carries the
correlation id of the message or request that wrote it, so what its consumers do in turn
(a lab alert, a Subscription's notification, a write) is traced to that message too; one
message's writes are one transaction, so keeping sets to one correlation splits almost none.
"""

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.base.envelope import FHIR_JSON, Envelope
from hub.base.errors import BusError, PermanentError
from hub.base.logs import log_event
from hub.base.tasks import cancel, wait_event
from hub.bus.base import Bus
from hub.bus.topology import EVENTS
from store.resources import OutboxEvent, ResourceStore

log = logging.getLogger(__name__)
BATCH = 500
# A change set holds at most this many entries and about this many bytes: a consumer's retry
# repeats at most one set, and a search by ``_id`` for every entry stays one query.
SET_ENTRIES = 100
SET_BYTES = 1 << 20
CHANGES = ("created", "updated", "deleted")
_METHOD = {"created": "POST", "updated": "PUT", "deleted": "DELETE"}
_STATUS = {"created": "201", "updated": "200", "deleted": "204"}


@dataclass(frozen=True)
class Change:
    """One entry of a change set."""

    type: str
    id: str
    version: int
    change: str  # created | updated | deleted
    resource: dict[str, Any] | None  # the version written; None for a deletion

    @property
    def version_path(self) -> str:
        return f"{self.type}/{self.id}/_history/{self.version}"


def change_sets(events: Sequence[OutboxEvent]) -> Iterator[list[OutboxEvent]]:
    """Consecutive events of one routing key and correlation, at most SET_ENTRIES and about
    SET_BYTES each."""
    run: list[OutboxEvent] = []
    size = 0
    for event in events:
        weight = len(event.body or b"")
        if run and (
            event.topic != run[0].topic
            or event.correlation != run[0].correlation
            or len(run) >= SET_ENTRIES
            or size + weight > SET_BYTES
        ):
            yield run
            run, size = [], 0
        run.append(event)
        size += weight
    if run:
        yield run


def change_set_envelope(events: Sequence[OutboxEvent]) -> Envelope:
    """One Bundle of type ``history`` for a run of events sharing a routing key; the stored
    bodies are spliced in as they are (``orjson.Fragment``), not parsed and encoded again."""
    topic = events[0].topic
    change = topic.rpartition(".")[2]
    entries = []
    for event in events:
        entry: dict[str, Any] = {"fullUrl": f"{event.type}/{event.id}"}
        if event.body is not None:
            entry["resource"] = orjson.Fragment(event.body)
        url = event.type if change == "created" else f"{event.type}/{event.id}"
        entry["request"] = {"method": _METHOD[change], "url": url}
        entry["response"] = {"status": _STATUS[change], "etag": f'W/"{event.version}"'}
        entries.append(entry)
    return Envelope(
        type=topic,
        source="fhir-store",
        content_type=FHIR_JSON,
        body=orjson.dumps({"resourceType": "Bundle", "type": "history", "entry": entries}),
        correlation_id=events[0].correlation,
        headers={"resource-type": events[0].type, "entries": str(len(events))},
    )


def read_change_set(envelope: Envelope, routing_key: str) -> list[Change]:
    """The entries of a change set; a body that is not one is a permanent error."""
    change = routing_key.rpartition(".")[2]
    if change not in CHANGES:
        raise PermanentError(f"not an event routing key: {routing_key}")
    try:
        bundle = orjson.loads(envelope.body)
    except orjson.JSONDecodeError as exc:
        raise PermanentError(f"the change set is not JSON: {exc}") from exc
    if "resource-version" in envelope.headers:
        return [_single(bundle, envelope.headers["resource-version"], change)]
    if not isinstance(bundle, dict) or bundle.get("type") != "history":
        raise PermanentError("the event is not a history Bundle")
    return [_change(entry, change) for entry in bundle.get("entry") or []]


def _single(resource: Any, version_path: str, change: str) -> Change:
    """An event of one resource, as relayed before change sets: still in a queue when the hub
    was upgraded, it is read rather than dead-lettered."""
    type_, id_, _, version = version_path.split("/") if version_path.count("/") == 3 else [""] * 4
    if not version.isdigit() or not isinstance(resource, dict):
        raise PermanentError(f"an event of one resource without its version: {version_path!r}")
    return Change(type_, id_, int(version), change, resource if change != "deleted" else None)


def _change(entry: Any, change: str) -> Change:
    try:
        type_, _, id_ = entry["fullUrl"].partition("/")
        version = int(entry["response"]["etag"].removeprefix('W/"').removesuffix('"'))
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise PermanentError("a change set entry without fullUrl or version") from exc
    resource = entry.get("resource")
    if change != "deleted" and not isinstance(resource, dict):
        raise PermanentError(f"the change set entry {type_}/{id_} has no resource")
    return Change(type_, id_, version, change, resource if change != "deleted" else None)


class EventRelay:
    def __init__(self, bus: Bus, resources: ResourceStore, idle_s: float = 1.0) -> None:
        self.bus, self.resources, self.idle_s = bus, resources, idle_s
        self._task: asyncio.Task[None] | None = None
        # one drain at a time: two would publish the same versions twice
        self._draining = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-relay")

    async def stop(self) -> None:
        """Stop at once: what was not relayed yet is read again at the next start."""
        await cancel(self._task)
        self._task = None

    async def drain(self) -> int:
        """Publish every pending event; returns how many were published."""
        published = 0
        async with self._draining:
            while events := await self.resources.pending_events(BATCH):
                sets = [(change_set_envelope(run), run[0].topic) for run in change_sets(events)]
                await self.bus.publish_many(sets, EVENTS)
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
            except BusError as exc:  # the bus is down: the events wait in the store
                log_event(log, "relay_waiting", error=type(exc).__name__)
                await asyncio.sleep(self.idle_s)
