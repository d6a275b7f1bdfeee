"""After a restart, the lab service's memory is rebuilt from what the hub keeps durably:
- the tubes in flight, from the lab resources the store took within the window (orders, tubes,
  reports, tasks), replayed oldest write first, and the LIS's status messages of the window
  from the archive (they have no FHIR of their own);
- the TAT alerts people had taken in charge, from their AuditEvents;
- the critical values still open, from the desk's AuditEvents: same id, raise time, deadline
  and escalation level.
What arrived while the process was down waits in the lab's durable queues and comes after;
replaying it again changes nothing (stages keep their first time, the desk ignores a version
it holds)."""

import gc
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from hub.hl7v2.message import HL7ParseError, Message
from hub.lab.critical_alerts import Step
from hub.lab.feed import context_of
from hub.lab.lifecycle import parse_time
from hub.lab.service import LabService
from hub.lab.tat import AlertError, ChangeKind
from hub.logs import log_event
from store.archive import ArchivedMessage, ArchiveQuery, MessageArchive
from store.index import instant
from store.query import parse_search
from store.resources import AuditFilter, ResourceStore

Json = dict[str, Any]

log = logging.getLogger(__name__)

LIFECYCLE_TYPES = ("ServiceRequest", "Specimen", "DiagnosticReport", "Task")
STATUS_MESSAGES = ("SSU^U03", "ORL^O22", "ORR^O02")  # stages only the LIS's HL7 reports
PAGE = 1_000
ARCHIVE_LIMIT = 200_000  # per message type: far above a day of a hospital's status messages
_CLOSING_STEPS = {Step.ACKNOWLEDGED.value, Step.CLOSED.value}


@dataclass
class _OpenCritical:
    """What the audit trail says of one critical-value alert."""

    observation: str
    raised: datetime | None = None
    level: int = 0
    last_step: str = ""


@dataclass
class Rebuilt:
    resources: int = 0
    messages: int = 0
    acknowledged: int = 0
    critical: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)


async def rebuild(
    service: LabService, resources: ResourceStore, archive: MessageArchive, since: datetime
) -> Rebuilt:
    began = time.perf_counter()
    done = Rebuilt()
    window: dict[str, Json] = {}
    for kind in LIFECYCLE_TYPES:
        async for resource in _written_since(resources, kind, since):
            window[f"{kind}/{resource['id']}"] = resource
    for resource in sorted(window.values(), key=lambda r: str(r["meta"]["lastUpdated"])):
        await service.take_resource(resource, await context_of(resources, resource, window))
        done.resources += 1
    for message in await _status_messages(archive, since):
        await service.take_hl7(message, replay=True)
        done.messages += 1
    service.engine.tick()  # deadlines passed while the process was down raise their alerts now
    audit = [event async for event in _audit_since(resources, since)]
    done.acknowledged = _restore_acknowledgements(service, audit)
    done.critical = await _restore_critical(service, resources, audit)
    # the tubes just loaded stay for hours: out of the collector's generations, so a full
    # collection does not walk them every few seconds
    gc.collect()
    gc.freeze()
    done.seconds = round(time.perf_counter() - began, 3)
    log_event(
        log,
        "lab_rebuilt",
        resources=done.resources,
        messages=done.messages,
        in_flight=service.engine.in_flight(),
        acknowledged=done.acknowledged,
        critical=done.critical,
        seconds=done.seconds,
    )
    return done


async def _written_since(
    resources: ResourceStore, kind: str, since: datetime
) -> AsyncIterator[Json]:
    query = parse_search(kind, [("_lastUpdated", f"ge{instant(since)}")])
    cursor: str | None = None
    while True:
        page = await resources.search(query, PAGE, cursor)
        for version in page.items:
            if version.body is not None:
                yield orjson.loads(version.body)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def _status_messages(archive: MessageArchive, since: datetime) -> list[Message]:
    found: list[ArchivedMessage] = []
    for kind in STATUS_MESSAGES:
        query = ArchiveQuery(message_type=kind, received_from=since, limit=ARCHIVE_LIMIT)
        found += await archive.search(query)
    messages = []
    for archived in sorted(found, key=lambda m: m.received_at):
        if archived.status == "rejected":
            continue  # never acknowledged: the LIS sent it again
        try:
            messages.append(Message(archived.text, archived.charset))
        except HL7ParseError:
            continue  # a damaged archive row: its status was recorded failed at the time
    return messages


async def _audit_since(resources: ResourceStore, since: datetime) -> AsyncIterator[Json]:
    filters = [AuditFilter("date", ">=", instant(since))]
    cursor: str | None = None
    while True:
        page = await resources.audit.search(filters, PAGE, cursor, newest_first=False)
        for version in page.items:
            if version.body is not None:
                yield orjson.loads(version.body)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _type_code(event: Json) -> str:
    return str((event.get("type") or {}).get("code", ""))


def _step(event: Json) -> str:
    return str(((event.get("subtype") or [{}])[0]).get("code", ""))


def _details(event: Json) -> dict[str, str]:
    entity = (event.get("entity") or [{}])[0]
    return {str(d.get("type")): str(d.get("valueString", "")) for d in entity.get("detail", [])}


def _restore_acknowledgements(service: LabService, audit: list[Json]) -> int:
    """A TAT alert's id is its rule and tube, so the same alert raised again after the
    restart is the one a person took in charge before it."""
    restored = 0
    for event in audit:
        if _type_code(event) != "lab-tat" or _step(event) != ChangeKind.ACKNOWLEDGED.value:
            continue
        details = _details(event)
        by = str(((event.get("agent") or [{}])[0]).get("name") or "")
        try:
            service.engine.acknowledge(
                details.get("alert", ""),
                by,
                details.get("note", ""),
                at=parse_time(event.get("recorded")),
            )
        except AlertError:
            continue  # cleared since, or acknowledged twice in the trail
        restored += 1
    return restored


def _critical_trail(audit: list[Json]) -> dict[str, _OpenCritical]:
    """Each critical-value alert of the trail: its result, raise time, level, last step."""
    alerts: dict[str, _OpenCritical] = {}
    for event in audit:
        if _type_code(event) != "critical-value":
            continue
        details = _details(event)
        what = ((event.get("entity") or [{}])[0].get("what") or {}).get("reference", "")
        alert = alerts.setdefault(details.get("alert", ""), _OpenCritical(str(what)))
        alert.last_step = _step(event)
        if alert.last_step == Step.RAISED.value:
            alert.raised = parse_time(event.get("recorded"))
        if details.get("level", "").isdigit():
            alert.level = max(alert.level, int(details["level"]))
    return alerts


async def _restore_critical(
    service: LabService, resources: ResourceStore, audit: list[Json]
) -> int:
    restored = 0
    for alert_id, alert in _critical_trail(audit).items():
        if alert.last_step in _CLOSING_STEPS:
            # settled by the process that held the queues while this one waited as a standby
            if (held := service.desk.drop(alert_id)) is not None:
                service.view.forget(held.observation)
            continue
        if alert.raised is None:
            continue
        kind, _, id_ = alert.observation.partition("/")
        (observation, *_) = [
            orjson.loads(v.body) for v in await resources.read_many([(kind, id_)]) if v.body
        ] or [None]
        if observation is None:
            continue  # deleted since: nothing left to report
        if await service.restore_critical(alert_id, observation, alert.raised, alert.level):
            restored += 1
    return restored
