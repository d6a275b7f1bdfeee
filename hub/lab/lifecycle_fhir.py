"""Lifecycle events from FHIR resources: a ServiceRequest orders (and, with the LIS's
accession number, registers), a Specimen is collected and received, a DiagnosticReport or an
Observation gives a preliminary, final or corrected result, a Task reports any stage by its
business status. Each resource is read with what it refers to (its order, its visit), which
gives the tube its test group, priority, source and department."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from hub.base.json import Json
from hub.lab.lifecycle import (
    LifecycleConfig,
    LifecycleEvent,
    Priority,
    Source,
    Stage,
    TrackDetails,
    lifecycle_config,
    parse_time,
)
from hub.lab.report_results import lists_result


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
    if specimen.get("parent"):
        return []  # a portion of another tube (one person's swab in a pool): the tube is tracked
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
    report = next((r for r in batch.of_kind("DiagnosticReport") if lists_result(r, reference)), {})
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
