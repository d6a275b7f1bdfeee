"""How the lab service hears about the lab's work: from the bus, like any other feature.

Two queues, consumed only where the lab service runs:
- ``lab.fhir`` takes the store's canonical events (``fhir.<Type>.<change>`` on the events
  exchange) for the resources that move a tube or carry a result, whoever wrote them: the HL7
  normalizer, an app through the FHIR API, a transaction Bundle. Each resource is read with
  what it refers to (its order, its visit, its report), fetched from the store.
- ``lab.hl7`` takes the LIS's status messages as they arrive (SSU^U03, ORL, OML, ORU on the
  inbound exchange): what they say about a tube's stage has no FHIR of its own.

Both queues have a single active consumer, so with several hub processes exactly one holds
the lab's state (tubes in flight, open alerts) and serves the screens; the others wait as
standbys. A process cannot ask the broker whether it is the active one, so each lab process
sends itself a probe through ``lab.hl7`` every half minute: the one that receives probes is
active. What a process holds in memory is rebuilt from the store at start and again when it
hears from the queues after a silence (``hub/lab/rebuild.py``)."""

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol

import orjson

from hub.base.envelope import Envelope
from hub.base.errors import PermanentError
from hub.base.json import Json
from hub.base.tasks import Turns
from hub.bus.base import Delivery, Handler
from hub.bus.topology import EVENTS, INBOUND
from hub.events import Change, read_change_set
from hub.hl7v2.message import HL7ParseError, Message, parse, without_results
from hub.hl7v2.publishing import message_text
from store.archive import MessageArchive
from store.resources import ResourceStore, StoredVersion

FHIR_QUEUE = "lab.fhir"
HL7_QUEUE = "lab.hl7"
QUEUES = (FHIR_QUEUE, HL7_QUEUE)
# the resources that move a tube (ordered → printed) or carry a result to check
LAB_TYPES = ("ServiceRequest", "Specimen", "DiagnosticReport", "Observation", "Task")
FHIR_BINDINGS = tuple(f"fhir.{kind}.*" for kind in LAB_TYPES)
# the LIS's own status messages; SSU and ORL have no FHIR of their own
# a probe each lab process sends itself: only the active consumer of the queue receives it
PROBE_KEY = "hub.lab.probe"
PROBE_TYPE = "hub.lab.probe"
HL7_BINDINGS = tuple(f"hl7v2.{kind}.#" for kind in ("SSU", "ORL", "ORR", "OML", "ORM", "ORU"))
HL7_BINDINGS += (PROBE_KEY,)
FHIR_EXCHANGE, HL7_EXCHANGE = EVENTS, INBOUND

# Where a resource points that says something about its tube: the order, the tube, the report
# an Observation belongs to, the visit (department, outpatient or inpatient), the patient (the
# critical limits by sex and age).
_REFERENCES = ("request", "specimen", "basedOn", "encounter", "subject", "focus", "partOf")
_CONTEXT_DEPTH = 2  # a report's tube and that tube's order; further is never needed
_CONTEXT_LIMIT = 50  # a reference fan-out beyond this is not a lab order
REPORTS_KEPT = 64  # recent reports remembered with their results (one ORU's, many at once)


class LabSink(Protocol):
    async def catch_up(self) -> None: ...

    async def take_resource(self, resource: Json, context: Sequence[Json]) -> None: ...

    async def take_deletion(self, kind: str, id_: str, version: int | None) -> None: ...

    async def take_hl7(self, message: Message) -> None: ...


class LabServices(Protocol):
    @property
    def resources(self) -> ResourceStore: ...

    @property
    def lab(self) -> LabSink | None: ...

    @property
    def archive(self) -> MessageArchive: ...


def references(resource: Json) -> list[tuple[str, str]]:
    """``(type, id)`` of the literal references in the elements the lab reads."""
    found: list[tuple[str, str]] = []
    for name in _REFERENCES:
        value = resource.get(name)
        for item in value if isinstance(value, list) else [value]:
            reference = item.get("reference") if isinstance(item, dict) else None
            if isinstance(reference, str) and reference.count("/") == 1:
                kind, _, id_ = reference.partition("/")
                found.append((kind, id_))
    return found


class ResultReports:
    """Which report lists a result, learnt from every report the feed meets (its own event, or
    a look-up): the results of one report, however many, cost one read of it, not one each;
    reading and parsing a report of 50,000 results for each of them made a big message cost
    its size squared."""

    def __init__(self, reports: int = REPORTS_KEPT) -> None:
        self._limit = reports
        self._reports: OrderedDict[str, Json] = OrderedDict()  # "DiagnosticReport/id" -> body
        self._by_result: dict[str, str] = {}  # "Observation/id" -> the report's key

    def learn(self, report: Json) -> None:
        key = f"DiagnosticReport/{report['id']}"
        self._forget(key)
        self._reports[key] = report
        for result in _results(report):
            self._by_result[result] = key
        while len(self._reports) > self._limit:
            self._forget(next(iter(self._reports)))

    def report_of(self, result: str) -> Json | None:
        key = self._by_result.get(result)
        if key is None:
            return None
        self._reports.move_to_end(key)
        return self._reports[key]

    def _forget(self, key: str) -> None:
        report = self._reports.pop(key, None)
        for result in _results(report or {}):
            if self._by_result.get(result) == key:
                del self._by_result[result]


def _results(report: Json) -> list[str]:
    return [
        reference
        for item in report.get("result") or []
        if isinstance(item, dict) and isinstance(reference := item.get("reference"), str)
    ]


async def context_of(
    store: ResourceStore,
    resource: Json,
    known: dict[str, Json] | None = None,
    reports: ResultReports | None = None,
    absent: set[str] | None = None,
) -> list[Json]:
    """What ``resource`` refers to, two steps out; for an Observation also the report that
    lists it (an ORU's results name their tube only through the report). ``known`` (by
    ``Type/id``) is tried before the store: a rebuild that loaded the window has most;
    ``reports`` remembers the reports already read; ``absent`` collects what the store does
    not have (an order's placer requisition often), so a change set asks for it once."""
    known = known if known is not None else {}
    absent = absent if absent is not None else set()
    seen = {f"{resource['resourceType']}/{resource['id']}"}
    found: list[Json] = []
    if resource["resourceType"] == "Observation":
        found += await _reports_listing(store, f"Observation/{resource['id']}", reports)
        seen.update(f"DiagnosticReport/{r['id']}" for r in found)
    wanted = [key for item in [resource, *found] for key in references(item)]
    for _ in range(_CONTEXT_DEPTH):
        missing = [
            key
            for key in dict.fromkeys(wanted)
            if f"{key[0]}/{key[1]}" not in seen and f"{key[0]}/{key[1]}" not in absent
        ]
        if not missing:
            break
        step = await _fetch(store, missing[:_CONTEXT_LIMIT], known, absent)
        seen.update(f"{kind}/{id_}" for kind, id_ in missing)
        found += step
        wanted = [
            key for item in step if item["resourceType"] != "Patient" for key in references(item)
        ]
    return found


async def _fetch(
    store: ResourceStore,
    keys: Sequence[tuple[str, str]],
    known: dict[str, Json],
    absent: set[str],
) -> list[Json]:
    found = [known[f"{k}/{i}"] for k, i in keys if f"{k}/{i}" in known]
    rest = [(k, i) for k, i in keys if f"{k}/{i}" not in known]
    read = _bodies(await store.read_many(rest)) if rest else []
    there = {f"{item['resourceType']}/{item['id']}" for item in read}
    absent.update(f"{k}/{i}" for k, i in rest if f"{k}/{i}" not in there)
    return found + read


async def _reports_listing(
    store: ResourceStore, result: str, reports: ResultReports | None
) -> list[Json]:
    remembered = reports.report_of(result) if reports is not None else None
    if remembered is not None:
        return [remembered]
    listed = await store.referencing(result, 5)
    found = [r for r in _bodies(listed) if r["resourceType"] == "DiagnosticReport"]
    if reports is not None:
        for report in found:
            reports.learn(report)
    return found


def _bodies(versions: Iterable[StoredVersion]) -> list[Json]:
    return [orjson.loads(v.body) for v in versions if v.body is not None]


def _sink(services: LabServices) -> LabSink:
    if services.lab is None:
        raise RuntimeError("the lab queues are consumed only where the lab service runs")
    return services.lab


def fhir_events(services: LabServices) -> Handler:
    """``lab.fhir``: a change set of stored resources at a time; what its entries refer to is
    read once for the set (the ten results of a report share their tube, order and visit), and
    a deletion says nothing about progress."""
    sink = _sink(services)
    reports = ResultReports()
    # One set at a time: each hands the loop back every few milliseconds (``Turns``), and
    # several sets taking their turns side by side would still make every turn of the loop
    # that long several times over (an ACK needs a few turns).
    one_at_a_time = asyncio.Lock()

    async def handle(delivery: Delivery) -> None:
        changes = read_change_set(delivery.envelope, delivery.routing_key)
        changes = [c for c in changes if c.type in LAB_TYPES]
        if not changes:
            return
        async with one_at_a_time:
            await _take_changes(changes)

    async def _take_changes(changes: list[Change]) -> None:
        await sink.catch_up()
        known: dict[str, Json] = {}  # read for this set, by "Type/id"
        absent: set[str] = set()  # not in the store when this set asked
        turns = Turns()
        for change in changes:
            await turns.take()
            if change.resource is None:
                await sink.take_deletion(change.type, change.id, change.version)
                continue
            resource = change.resource
            if resource.get("resourceType") != change.type or resource.get("id") != change.id:
                raise PermanentError(f"the change set entry {change.type}/{change.id} is not it")
            if change.type == "DiagnosticReport":
                reports.learn(resource)
            context = await context_of(services.resources, resource, known, reports, absent)
            known.update((f"{item['resourceType']}/{item['id']}", item) for item in context)
            await sink.take_resource(resource, context)

    return handle


def probe(sender: str) -> Envelope:
    return Envelope(type=PROBE_TYPE, source=sender, content_type="application/json", body=b"{}")


def hl7_status(services: LabServices) -> Handler:
    """``lab.hl7``: a message the listener accepted, read for the stages it reports."""
    sink = _sink(services)

    async def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        if envelope.type == PROBE_TYPE:
            await sink.catch_up()  # heard: this process holds the queues
            return
        charset = envelope.headers.get("charset", "utf-8")
        text = await message_text(envelope, services.archive)
        try:  # the statuses are in the order and specimen segments, never in the results
            message = await parse(without_results(text), charset)
        except (HL7ParseError, UnicodeDecodeError) as exc:
            raise PermanentError(f"cannot read the message: {exc}") from exc
        await sink.catch_up()
        await sink.take_hl7(message)

    return handle
