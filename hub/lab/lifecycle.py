"""The life of a specimen tube (标本全流程), from the order to the printed report, as the lab
turnaround screen follows it: each stage is time-stamped the first time a feed says it
happened. Events come from the FHIR resources the store holds after normalization and, for
what the HL7 mapping does not carry (LIS status updates, the reviewer of a report), from the
HL7 message itself; which fields and codes drive which stage is configuration per LIS in
``fhir_profiles/data/lab-lifecycle.json``.

A track is keyed by the Specimen resource id: the normalizer derives it from the barcode and
the application that printed it, so an SSU^U03 that names the barcode and the FHIR Specimen of
the order meet on one track."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from functools import cache
from importlib import resources
from typing import Any

from hub.hl7v2.datatypes import date_time
from hub.hl7v2.mapping.common import stable_id
from hub.hl7v2.mapping.orders import placer_order_key, service_request_id, specimen_key
from hub.hl7v2.message import Message, Segment
from hub.schedule import SHANGHAI

Json = dict[str, Any]


class Stage(IntEnum):
    """Stages in the order a tube goes through them; a later stage implies the earlier ones."""

    ORDERED = 0  # 开单
    COLLECTED = 1  # 采集
    RECEIVED = 2  # 签收 (the tube reached the lab)
    REGISTERED = 3  # 核收 (LIS accession number given)
    IN_TEST = 4  # 上机检测
    PRELIMINARY = 5  # 初步结果
    FINAL = 6  # 最终结果
    REVIEWED = 7  # 审核
    REPORTED = 8  # 报告发布
    PRINTED = 9  # 打印

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, name: str) -> "Stage":
        return cls[name.upper()]


class Priority(StrEnum):
    STAT = "stat"  # 急诊/加急
    ROUTINE = "routine"  # 常规


class Source(StrEnum):
    OUTPATIENT = "outpatient"  # 门诊
    INPATIENT = "inpatient"  # 住院
    EMERGENCY = "emergency"  # 急诊


CANCELLED = "cancelled"  # a configured code that withdraws the tube rather than moving it


@dataclass(frozen=True, slots=True)
class TrackDetails:
    """What a feed says about the tube besides its stage; None is "this feed does not say"."""

    barcode: str | None = None
    patient: str | None = None  # "Patient/<id>": a reference, never a name
    test_group: str | None = None
    priority: Priority | None = None
    source: Source | None = None
    department: str | None = None  # the requesting department (申请科室)
    request: str | None = None  # ServiceRequest id


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One stage reached at one time. ``specimen`` is the track key; an event that names only
    its order (an ORL without SPM, a Task on a ServiceRequest) carries ``request`` and is
    applied to the tubes of that order."""

    stage: Stage
    at: datetime
    origin: str  # which feed and element said it, for the audit trail
    specimen: str | None = None
    request: str | None = None
    correction: bool = False
    cancelled: bool = False
    details: TrackDetails = TrackDetails()

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("lifecycle times must be timezone-aware")
        if self.specimen is None and self.request is None:
            raise ValueError("a lifecycle event names a specimen or an order")


@dataclass(frozen=True, slots=True)
class Correction:
    """A result corrected after it was first given: the first time stays, this is kept."""

    stage: Stage
    at: datetime
    origin: str


@dataclass(slots=True)
class SpecimenTrack:
    specimen: str
    barcode: str | None = None
    patient: str | None = None
    test_group: str | None = None
    priority: Priority = Priority.ROUTINE
    source: Source = Source.OUTPATIENT
    department: str | None = None
    times: dict[Stage, datetime] = field(default_factory=dict)
    stage: Stage | None = None  # the furthest stage reached
    corrections: list[Correction] = field(default_factory=list)
    requests: set[str] = field(default_factory=set)
    cancelled_requests: set[str] = field(default_factory=set)
    cancelled: bool = False

    def apply(self, event: LifecycleEvent) -> None:
        """Out of order is normal (the LIS and the HIS send on their own schedules): an earlier
        stage arriving late fills in its time but never moves the tube back; a stage already
        timed keeps its first time."""
        self._take(event.details)
        if event.cancelled:
            self._cancel(event.request)
            return
        if event.correction:
            self.corrections.append(Correction(event.stage, event.at, event.origin))
        self.times.setdefault(event.stage, event.at)
        if self.stage is None or event.stage > self.stage:
            self.stage = event.stage

    def time_of(self, stage: Stage) -> datetime | None:
        return self.times.get(stage)

    def started(self, start: Stage, target: Stage) -> datetime | None:
        """When the span from ``start`` towards ``target`` began: the start stage's time, or
        when a feed skipped it, the earliest stage timed between the two."""
        found = [t for s, t in self.times.items() if start <= s < target]
        return min(found) if found else None

    def reached(self, stage: Stage) -> bool:
        return self.stage is not None and self.stage >= stage

    def _take(self, details: TrackDetails) -> None:
        for name in ("barcode", "patient", "test_group", "priority", "source", "department"):
            value = getattr(details, name)
            if value is not None:
                setattr(self, name, value)
        if details.request:
            self.requests.add(details.request)

    def _cancel(self, request: str | None) -> None:
        # a tube shared by two orders (肝功能 and 肾功能 on one serum tube) is withdrawn only
        # when every order on it is cancelled
        if request is None:
            self.cancelled = True
            return
        self.requests.add(request)
        self.cancelled_requests.add(request)
        self.cancelled = self.requests <= self.cancelled_requests


# --- configuration ---


@dataclass(frozen=True)
class LifecycleConfig:
    test_groups: Mapping[str, str]
    stat_priorities: frozenset[str]
    encounter_sources: Mapping[str, str]
    fhir: Json
    hl7: Json

    @classmethod
    def from_json(cls, data: Json) -> "LifecycleConfig":
        return cls(
            test_groups=data.get("test_groups", {}),
            stat_priorities=frozenset(data.get("stat_priorities", ["stat"])),
            encounter_sources=data.get("encounter_sources", {}),
            fhir=data.get("fhir", {}),
            hl7=data.get("hl7", {}),
        )

    def for_sender(self, sender: str) -> Json:
        found: Json = self.hl7.get(sender) or self.hl7.get("default", {})
        return found


@cache
def lifecycle_config() -> LifecycleConfig:
    data = resources.files("fhir_profiles") / "data" / "lab-lifecycle.json"
    return LifecycleConfig.from_json(json.loads(data.read_text(encoding="utf-8")))


def parse_time(text: str | None) -> datetime | None:
    """A FHIR dateTime/instant with a time of day; a date alone says nothing about TAT."""
    if not text or "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


# --- from FHIR resources ---


def _ref_id(ref: Json | None, kind: str) -> str | None:
    target = str((ref or {}).get("reference", ""))
    prefix = f"{kind}/"
    return target[len(prefix) :] if target.startswith(prefix) else None


def _ref_ids(refs: Iterable[Json] | None, kind: str) -> list[str]:
    return [found for ref in refs or [] if (found := _ref_id(ref, kind))]


def _codes(concept: Json | None) -> list[str]:
    concept = concept or {}
    found = [str(c["code"]) for c in concept.get("coding", []) if c.get("code")]
    return found + ([str(concept["text"])] if concept.get("text") else [])


@dataclass
class _Batch:
    """The resources one message produced, indexed, so an Observation finds its report's tube
    and a Specimen its order's priority and department."""

    by_ref: dict[str, Json]
    observed_at: datetime
    config: LifecycleConfig

    @classmethod
    def of(cls, found: list[Json], observed_at: datetime, config: LifecycleConfig) -> "_Batch":
        return cls({f"{r['resourceType']}/{r['id']}": r for r in found}, observed_at, config)

    def of_kind(self, kind: str) -> list[Json]:
        return [r for r in self.by_ref.values() if r["resourceType"] == kind]

    def requests_of(self, specimen_id: str) -> list[Json]:
        specimen = self.by_ref.get(f"Specimen/{specimen_id}", {})
        named = set(_ref_ids(specimen.get("request"), "ServiceRequest"))
        return [
            r
            for r in self.of_kind("ServiceRequest")
            if r["id"] in named or specimen_id in _ref_ids(r.get("specimen"), "Specimen")
        ]

    def details(self, specimen_id: str | None, request_id: str | None = None) -> TrackDetails:
        specimen = self.by_ref.get(f"Specimen/{specimen_id}", {})
        requests = self.requests_of(specimen_id) if specimen_id else []
        if request_id and (own := self.by_ref.get(f"ServiceRequest/{request_id}")):
            requests = [own]
        order = requests[0] if requests else {}
        report = next(
            (r for r in self.of_kind("DiagnosticReport") if self._covers(r, specimen_id)), {}
        )
        visit = self.by_ref.get(str((order or report).get("encounter", {}).get("reference")), {})
        return TrackDetails(
            barcode=_barcode(specimen),
            patient=(specimen or order or report).get("subject", {}).get("reference"),
            test_group=self._test_group(order.get("code") or report.get("code")),
            priority=self._priority(order) if order else None,
            source=self._source(visit),
            department=_department(visit),
            request=order.get("id") or request_id or _first_request(specimen),
        )

    def _covers(self, report: Json, specimen_id: str | None) -> bool:
        return specimen_id is not None and specimen_id in _ref_ids(
            report.get("specimen"), "Specimen"
        )

    def _test_group(self, code: Json | None) -> str | None:
        codes = _codes(code)
        groups = self.config.test_groups
        return next((groups[c] for c in codes if c in groups), codes[0] if codes else None)

    def _priority(self, order: Json) -> Priority:
        urgent = order.get("priority") in self.config.stat_priorities
        return Priority.STAT if urgent else Priority.ROUTINE

    def _source(self, visit: Json) -> Source | None:
        kind = self.config.encounter_sources.get(str(visit.get("class", {}).get("code")))
        return Source(kind) if kind else None

    def event(
        self, stage: Stage, at: datetime, origin: str, specimen: str | None, request: str | None
    ) -> LifecycleEvent:
        return LifecycleEvent(
            stage,
            at,
            origin,
            specimen=specimen,
            request=None if specimen else request,
            details=self.details(specimen, request),
        )

    def targets(self, specimens: list[str], request: str | None) -> list[str | None]:
        """The tubes an event is about; none known: the order, resolved by the engine."""
        if specimens:
            return list(specimens)
        return [None] if request else []


def _first_request(specimen: Json) -> str | None:
    found = _ref_ids(specimen.get("request"), "ServiceRequest")
    return found[0] if found else None


def _barcode(specimen: Json) -> str | None:
    identifiers = specimen.get("identifier") or []
    placer = [i for i in identifiers if "PLAC" in _codes(i.get("type"))]
    chosen = (placer or identifiers or [{}])[0]
    return str(chosen["value"]) if chosen.get("value") else None


def _department(visit: Json) -> str | None:
    service = visit.get("serviceType") or {}
    if service.get("text"):
        return str(service["text"])
    wards = [entry.get("location", {}).get("display") for entry in visit.get("location", [])]
    return next((str(w) for w in wards if w), None)


def events_from_fhir(
    found: Iterable[Json],
    observed_at: datetime,
    config: LifecycleConfig | None = None,
    context: Iterable[Json] = (),
) -> list[LifecycleEvent]:
    """Lifecycle events from the resources of one store write. ``context`` holds what they
    refer to (the order of a tube, the visit of an order), read for details but not itself
    an event. ``observed_at`` times what the resources themselves do not (a new LIS accession
    number, a report that reached the store): when the store took them."""
    focus = list(found)
    batch = _Batch.of([*context, *focus], observed_at, config or lifecycle_config())
    events: list[LifecycleEvent] = []
    for resource in focus:
        handler = _HANDLERS.get(resource["resourceType"])
        if handler is not None:
            events.extend(handler(resource, batch))
    return events


def _from_service_request(order: Json, batch: _Batch) -> list[LifecycleEvent]:
    settings = batch.config.fhir
    stages: list[tuple[Stage, datetime, str]] = []
    if authored := parse_time(order.get("authoredOn")):
        stages.append((Stage.ORDERED, authored, "ServiceRequest.authoredOn"))
    accession = set(settings.get("accession_systems", []))
    if any(i.get("system") in accession for i in order.get("identifier", [])):
        stages.append((Stage.REGISTERED, batch.observed_at, "ServiceRequest.identifier"))
    targets = batch.targets(_ref_ids(order.get("specimen"), "Specimen"), order["id"])
    events = [
        batch.event(stage, at, origin, target, order["id"])
        for target in targets
        for stage, at, origin in stages
    ]
    if order.get("status") in settings.get("cancelled_request_statuses", []):
        when = batch.observed_at
        events += [
            LifecycleEvent(
                Stage.ORDERED,
                when,
                "ServiceRequest.status",
                specimen=target,
                request=order["id"],
                cancelled=True,
            )
            for target in targets
        ]
    return events


def _from_specimen(specimen: Json, batch: _Batch) -> list[LifecycleEvent]:
    collection = specimen.get("collection", {})
    collected = parse_time(
        collection.get("collectedDateTime") or collection.get("collectedPeriod", {}).get("end")
    )
    stages = [
        (Stage.COLLECTED, collected, "Specimen.collection"),
        (Stage.RECEIVED, parse_time(specimen.get("receivedTime")), "Specimen.receivedTime"),
    ]
    if specimen.get("accessionIdentifier", {}).get("value"):
        stages.append((Stage.REGISTERED, batch.observed_at, "Specimen.accessionIdentifier"))
    return [
        batch.event(stage, at, origin, specimen["id"], None)
        for stage, at, origin in stages
        if at is not None
    ]


def _result_stage(status: str, stages: Mapping[str, str], batch: _Batch) -> tuple[Stage, bool]:
    """The stage of a report or observation status, and whether it corrects a result."""
    if status in batch.config.fhir.get("correction_statuses", []):
        return Stage.FINAL, True
    return (Stage.named(stages[status]), False) if status in stages else (Stage.ORDERED, False)


def _report_targets(report: Json, batch: _Batch) -> tuple[list[str], str | None]:
    specimens = _ref_ids(report.get("specimen"), "Specimen")
    orders = _ref_ids(report.get("basedOn"), "ServiceRequest")
    for order in orders:
        if not specimens and (known := batch.by_ref.get(f"ServiceRequest/{order}")):
            specimens = _ref_ids(known.get("specimen"), "Specimen")
    return specimens, orders[0] if orders else None


def _from_report(report: Json, batch: _Batch) -> list[LifecycleEvent]:
    settings = batch.config.fhir
    stage, corrected = _result_stage(
        str(report.get("status")), settings.get("report_stages", {}), batch
    )
    if stage is Stage.ORDERED:
        return []  # cancelled or unknown: says nothing about progress
    issued = parse_time(report.get("issued")) or batch.observed_at
    stages = [(stage, issued, "DiagnosticReport.status")]
    if stage is Stage.FINAL and report.get("resultsInterpreter"):
        stages.append((Stage.REVIEWED, issued, "DiagnosticReport.resultsInterpreter"))
        if settings.get("final_reviewed_report_is_reported"):
            stages.append((Stage.REPORTED, batch.observed_at, "DiagnosticReport stored"))
    specimens, order = _report_targets(report, batch)
    events = []
    for target in batch.targets(specimens, order):
        for each, at, origin in stages:
            event = batch.event(each, at, origin, target, order)
            events.append(_corrected(event) if corrected and each is Stage.FINAL else event)
    return events


def _corrected(event: LifecycleEvent) -> LifecycleEvent:
    return LifecycleEvent(
        event.stage,
        event.at,
        event.origin,
        specimen=event.specimen,
        request=event.request,
        correction=True,
        details=event.details,
    )


def _from_observation(observation: Json, batch: _Batch) -> list[LifecycleEvent]:
    settings = batch.config.fhir
    stage, corrected = _result_stage(
        str(observation.get("status")), settings.get("observation_stages", {}), batch
    )
    if stage is Stage.ORDERED:
        return []
    reference = f"Observation/{observation['id']}"
    report = next(
        (
            r
            for r in batch.of_kind("DiagnosticReport")
            if reference in [x.get("reference") for x in r.get("result", [])]
        ),
        {},
    )
    specimens = _ref_ids([observation["specimen"]], "Specimen") if "specimen" in observation else []
    order: str | None = None
    if not specimens and report:
        specimens, order = _report_targets(report, batch)
    at = (
        parse_time(observation.get("issued"))
        or parse_time(report.get("issued"))
        or batch.observed_at
    )
    events = [
        batch.event(stage, at, "Observation.status", target, order)
        for target in batch.targets(specimens, order)
    ]
    return [_corrected(e) for e in events] if corrected else events


def _task_stage(task: Json, settings: Json) -> Stage | None:
    business = settings.get("task_business_status", {})
    for code in _codes(task.get("businessStatus")):
        if code in business:
            return Stage.named(business[code])
    if task.get("status") == "completed":
        by_code = settings.get("task_codes", {})
        return next(
            (Stage.named(by_code[c]) for c in _codes(task.get("code")) if c in by_code), None
        )
    return None


def _from_task(task: Json, batch: _Batch) -> list[LifecycleEvent]:
    stage = _task_stage(task, batch.config.fhir)
    if stage is None:
        return []
    at = (
        parse_time(task.get("lastModified"))
        or parse_time(task.get("executionPeriod", {}).get("start"))
        or parse_time(task.get("authoredOn"))
        or batch.observed_at
    )
    focus = task.get("focus")
    specimens = _ref_ids([focus] if focus else [], "Specimen")
    orders = _ref_ids([focus] if focus else [], "ServiceRequest")
    orders += _ref_ids(task.get("basedOn"), "ServiceRequest")
    order = orders[0] if orders else None
    if not specimens and order and (known := batch.by_ref.get(f"ServiceRequest/{order}")):
        specimens = _ref_ids(known.get("specimen"), "Specimen")
    return [
        batch.event(stage, at, "Task", target, order) for target in batch.targets(specimens, order)
    ]


_HANDLERS = {
    "ServiceRequest": _from_service_request,
    "Specimen": _from_specimen,
    "DiagnosticReport": _from_report,
    "Observation": _from_observation,
    "Task": _from_task,
}


# --- from HL7 directly: what the mapping does not carry ---


def _read(segments: Mapping[str, Segment], spec: str) -> str:
    """``SAC-8`` or ``OBR-32.1`` from the segments in context."""
    name, _, path = spec.partition("-")
    numbers = [int(n) for n in path.split(".")] + [1, 1]
    segment = segments.get(name)
    return segment.value(numbers[0], numbers[1], numbers[2]) if segment else ""


def _first_time(segments: Mapping[str, Segment], specs: Iterable[str]) -> datetime | None:
    for spec in specs:
        if found := parse_time(date_time(_read(segments, spec))):
            return found
    return None


def events_from_hl7(
    message: Message, config: LifecycleConfig | None = None
) -> list[LifecycleEvent]:
    """SSU^U03 specimen status, OML/ORL order status from the LIS, and the review of an ORU
    (OBR-25 with OBR-32): each only where the sender's configuration describes it."""
    settings = (config or lifecycle_config()).for_sender(message.sender[0])
    kind = message.message_type[0]
    if kind == "SSU" and "specimen_status" in settings:
        return _specimen_status(message, settings)
    if kind in ("OML", "ORL", "ORM", "ORR") and "order_status" in settings:
        return _order_status(message, settings)
    if kind == "ORU" and "result" in settings:
        return _result_review(message, settings)
    return []


def _stage_event(
    code_stage: str,
    at: datetime,
    origin: str,
    specimen: str | None,
    request: str | None,
    barcode: str | None = None,
) -> LifecycleEvent:
    cancelled = code_stage == CANCELLED
    return LifecycleEvent(
        Stage.ORDERED if cancelled else Stage.named(code_stage),
        at,
        origin,
        specimen=specimen,
        request=None if specimen else request,
        cancelled=cancelled,
        details=TrackDetails(barcode=barcode, request=request),
    )


def _specimen_status(message: Message, settings: Json) -> list[LifecycleEvent]:
    """SSU^U03: one status per SAC (container); the barcode's namespace defaults to the
    application whose barcodes the LIS echoes (``placer_namespace``)."""
    rules = settings["specimen_status"]
    namespace = settings.get("placer_namespace") or message.sender[0]
    barcode_spec, status_spec = rules.get("barcode", "SAC-3"), rules.get("status", "SAC-8")
    context: dict[str, Segment] = {"MSH": message.msh}
    events = []
    for segment in message:
        context[segment.name] = segment
        if segment.name != "SAC":
            continue
        number = _read(context, barcode_spec)
        owner = _read(context, f"{barcode_spec.split('.')[0]}.2") or namespace
        stage = rules.get("codes", {}).get(_read(context, status_spec))
        at = _first_time(context, rules.get("time", ["MSH-7"]))
        if number and stage is not None and at is not None:
            tube = stable_id("spc", owner, number)
            events.append(
                _stage_event(stage, at, f"SSU^U03 {status_spec}", tube, None, barcode=number)
            )
    return events


def _groups(message: Message, head: str) -> list[dict[str, Any]]:
    """Segments after each ``head`` (ORC or OBR) up to the next, with the SPMs among them."""
    groups: list[dict[str, Any]] = []
    for segment in message:
        if segment.name == head:
            groups.append({head: segment, "SPM": []})
        elif groups and segment.name == "SPM":
            groups[-1]["SPM"].append(segment)
        elif groups and segment.name not in groups[-1]:
            groups[-1][segment.name] = segment
    return groups


def _tubes(group: dict[str, Any], namespace: str) -> list[str | None]:
    """The group's tubes by SPM-2; none: ``[None]``, the event goes to the order's tubes."""
    keys = [specimen_key(spm, namespace) for spm in group["SPM"]]
    found: list[str | None] = [stable_id("spc", *key) for key in keys if key]
    return found or [None]


def _order_status(message: Message, settings: Json) -> list[LifecycleEvent]:
    rules = settings["order_status"]
    namespace = settings.get("placer_namespace") or message.sender[0]
    events = []
    for group in _groups(message, "ORC"):
        orc, obr = group["ORC"], group.get("OBR")
        context = {"MSH": message.msh, **{k: v for k, v in group.items() if k != "SPM"}}
        at = _first_time(context, rules.get("time", ["MSH-7"]))
        placer = placer_order_key(orc, obr, namespace)
        request = service_request_id(*placer) if placer else None
        found = [
            (rules.get(table, {}).get(orc.value(number)), f"{message.message_type[0]} ORC-{number}")
            for table, number in (("control", 1), ("status", 5))
        ]
        for stage, origin in found:
            if stage is None or at is None:
                continue
            for tube in _tubes(group, namespace):
                if tube is not None or request is not None:
                    events.append(_stage_event(stage, at, origin, tube, request))
    return events


def _result_review(message: Message, settings: Json) -> list[LifecycleEvent]:
    rules = settings["result"]
    namespace = settings.get("placer_namespace") or message.sender[0]
    events = []
    for group in _groups(message, "OBR"):
        context = {"MSH": message.msh, "OBR": group["OBR"]}
        status = _read(context, rules.get("status", "OBR-25"))
        if status not in rules.get("reviewed_codes", []) or not _read(context, rules["reviewer"]):
            continue
        placer = placer_order_key(group.get("ORC"), group["OBR"], namespace)
        request = service_request_id(*placer) if placer else None
        corrected = status in rules.get("corrected_codes", [])
        for stage, specs in ((Stage.REVIEWED, "reviewed_time"), (Stage.REPORTED, "reported_time")):
            at = _first_time(context, rules.get(specs, ["MSH-7"]))
            for tube in _tubes(group, namespace):
                if at is not None and (tube is not None or request is not None):
                    events.append(
                        LifecycleEvent(
                            stage,
                            at,
                            f"ORU {rules['reviewer']}",
                            specimen=tube,
                            request=None if tube else request,
                            correction=corrected and stage is Stage.REVIEWED,
                            details=TrackDetails(request=request),
                        )
                    )
    return events
