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

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from hub.base.json import Json
from hub.base.logs import log_event
from hub.hl7v2.message import HL7ParseError, Message
from hub.lab.critical_alerts import Step
from hub.lab.feed import context_of
from hub.lab.lifecycle import parse_time
from hub.lab.service import LabService
from hub.lab.tat import AlertError, ChangeKind
from store.archive import ArchivedMessage, ArchiveQuery, MessageArchive
from store.index import instant
from store.listing import paged
from store.query import parse_search
from store.resources import AuditFilter, ResourceStore

log = logging.getLogger(__name__)

LIFECYCLE_TYPES = ("ServiceRequest", "Specimen", "DiagnosticReport", "Task")
# what the lab.hl7 queue takes: stages only the LIS's HL7 reports (SSU status, ORL/ORR order
# status, the review of an ORU in OBR-25 and OBR-32)
LAB_MESSAGES = ("SSU^U03", "ORL^O22", "ORR^O02", "OML^O21", "ORM^O01", "ORU^R01")
PAGE = 1_000
CRITICAL_LOOKBACK = timedelta(days=7)  # beyond the tubes' window, for critical values left open
_CLOSING_STEPS = {Step.ACKNOWLEDGED.value, Step.CLOSED.value}


@dataclass
class _OpenCritical:
    """What the audit trail says of one critical-value alert."""

    observation: str
    raised: datetime | None = None
    level: int = 0
    settled: bool = False  # acknowledged or closed at some step, whatever came after


@dataclass
class Rebuilt:
    resources: int = 0
    messages: int = 0
    acknowledged: int = 0
    critical: int = 0
    seconds: float = 0.0


async def rebuild(
    service: LabService, resources: ResourceStore, archive: MessageArchive, since: datetime
) -> Rebuilt:
    began = time.perf_counter()
    done = Rebuilt()
    window: dict[str, Json] = {}
    for kind in LIFECYCLE_TYPES:
        async for resource in _written_since(resources, kind, since):
            window[f"{kind}/{resource['id']}"] = resource
    # one timeline, as the queues brought them: a cancellation after a receipt stays after it
    timeline: list[tuple[datetime, int, Json | ArchivedMessage]] = [
        (_updated_at(resource), 0, resource) for resource in window.values()
    ]
    timeline += [(m.received_at, 1, m) for m in await _lab_messages(archive, since)]
    timeline.sort(key=lambda item: (item[0], item[1]))
    for _, _, item in timeline:
        if isinstance(item, ArchivedMessage):
            if (message := _parsed(item)) is not None:
                await service.take_hl7(message, replay=True)
                done.messages += 1
            continue
        await service.take_resource(item, await context_of(resources, item, window))
        done.resources += 1
    service.engine.tick()  # deadlines passed while the process was down raise their alerts now
    # the desk's own steps only (the trail also holds every read of patient data), over a
    # longer window: a critical value left open for days must come back too
    audit = [
        event
        for step in Step
        async for event in _audit_since(resources, since - CRITICAL_LOOKBACK, step.value)
    ]
    done.acknowledged = _restore_acknowledgements(service, audit)
    done.critical = await _restore_critical(service, resources, audit)
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
    async for resource in paged(lambda cursor: resources.search(query, PAGE, cursor)):
        yield resource


async def _lab_messages(archive: MessageArchive, since: datetime) -> list[ArchivedMessage]:
    """The archived messages of the window that the lab reads for stages (the types of the
    ``lab.hl7`` queue), page by page; those never acknowledged (rejected) left out."""
    seen: set[str] = set()
    found: list[ArchivedMessage] = []
    for kind in LAB_MESSAGES:
        start = since
        while True:
            query = ArchiveQuery(message_type=kind, received_from=start, limit=PAGE)
            page = await archive.search(query)
            fresh = [m for m in page if m.id not in seen]
            seen.update(m.id for m in fresh)
            found += [m for m in fresh if m.status != "rejected"]
            if len(page) < PAGE or not fresh:
                break
            start = page[-1].received_at  # inclusive: the ids already seen are skipped
    return found


def _parsed(archived: ArchivedMessage) -> Message | None:
    try:
        return Message(archived.text, archived.charset)
    except HL7ParseError:
        return None  # a damaged archive row: its status was recorded failed at the time


def _updated_at(resource: Json) -> datetime:
    return parse_time(str(resource["meta"]["lastUpdated"])) or datetime.min.replace(tzinfo=UTC)


async def _audit_since(
    resources: ResourceStore, since: datetime, subtype: str
) -> AsyncIterator[Json]:
    filters = [AuditFilter("date", ">=", instant(since)), AuditFilter("subtype", "=", subtype)]
    search = resources.audit.search
    async for event in paged(lambda cursor: search(filters, PAGE, cursor, newest_first=False)):
        yield event


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
        step = _step(event)
        # an acknowledged alert stays acknowledged through later corrections (updated)
        alert.settled = alert.settled or step in _CLOSING_STEPS
        if step == Step.RAISED.value:
            alert.raised = parse_time(event.get("recorded"))
        if details.get("level", "").isdigit():
            alert.level = max(alert.level, int(details["level"]))
    return alerts


async def _restore_critical(
    service: LabService, resources: ResourceStore, audit: list[Json]
) -> int:
    restored = 0
    for alert_id, alert in _critical_trail(audit).items():
        if alert.settled:
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
