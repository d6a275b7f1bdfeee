"""Lifecycle events from the LIS's HL7 itself, for what the mapping to FHIR does not carry:
SSU^U03 specimen status, the order status of OML/ORL (ORM/ORR in v2.3 style), the review of an
ORU (OBR-25 with OBR-32); each only where the sender's configuration describes it."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.base.json import Json
from hub.hl7v2.datatypes import date_time
from hub.hl7v2.mapping.common import stable_id
from hub.hl7v2.mapping.orders import placer_order_key, service_request_id
from hub.hl7v2.mapping.specimens import specimen_key
from hub.hl7v2.message import Message, Segment
from hub.lab.lifecycle import (
    CANCELLED,
    LifecycleConfig,
    LifecycleEvent,
    Stage,
    TrackDetails,
    lifecycle_config,
    parse_time,
)


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
        return _specimen_status(message, config)
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


@dataclass(frozen=True)
class ContainerStatus:
    """One SAC of an SSU^U03: a tube, the stage its status code means, when."""

    barcode: str
    owner: str  # the application whose barcode it is
    stage: str  # a stage name, or ``cancelled``
    at: datetime
    accession: str  # SAC-2, the LIS's accession number, when it sends one


def container_statuses(
    message: Message, config: LifecycleConfig | None = None
) -> list[ContainerStatus]:
    """SSU^U03: one status per SAC (container) whose code the sender's configuration knows;
    the barcode's namespace defaults to the application whose barcodes the LIS echoes
    (``placer_namespace``)."""
    settings = (config or lifecycle_config()).for_sender(message.sender[0])
    if message.message_type[0] != "SSU" or "specimen_status" not in settings:
        return []
    rules = settings["specimen_status"]
    namespace = settings.get("placer_namespace") or message.sender[0]
    barcode_spec, status_spec = rules.get("barcode", "SAC-3"), rules.get("status", "SAC-8")
    context: dict[str, Segment] = {"MSH": message.msh}
    found = []
    for segment in message:
        context[segment.name] = segment
        if segment.name != "SAC":
            continue
        number = _read(context, barcode_spec)
        owner = _read(context, f"{barcode_spec.split('.')[0]}.2") or namespace
        stage = rules.get("codes", {}).get(_read(context, status_spec))
        at = _first_time(context, rules.get("time", ["MSH-7"]))
        if number and stage is not None and at is not None:
            found.append(ContainerStatus(number, owner, stage, at, _read(context, "SAC-2")))
    return found


def _specimen_status(message: Message, config: LifecycleConfig | None) -> list[LifecycleEvent]:
    status_spec = (
        (config or lifecycle_config())
        .for_sender(message.sender[0])["specimen_status"]
        .get("status", "SAC-8")
    )
    return [
        _stage_event(
            status.stage,
            status.at,
            f"SSU^U03 {status_spec}",
            stable_id("spc", status.owner, status.barcode),
            None,
            barcode=status.barcode,
        )
        for status in container_statuses(message, config)
    ]


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
