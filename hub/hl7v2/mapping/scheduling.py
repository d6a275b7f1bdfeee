"""SIU^S12-S15 appointments (门诊预约, 检查预约): an Appointment from SCH and its resource
segments (AIS service, AIG/AIL/AIP general resource, location, personnel), after the
V2-to-FHIR IG's SCH/AIS/AIL/AIP[Appointment] maps. The filler appointment id (SCH-2), else
the placer's (SCH-1), keys the Appointment, so a reschedule (S13), a modification (S14) and a
cancel (S15) update the booking (S12) instead of adding to it."""

from datetime import datetime, timedelta

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import codeable, date_time, table
from hub.hl7v2.mapping.common import (
    V2_0203,
    Mapped,
    WriteMode,
    entity_key,
    label,
    patient,
    reference,
    sender_of,
    stable_id,
    staff,
)
from hub.hl7v2.mapping.orders import order_reference
from hub.hl7v2.message import Message, Segment

# Resource segment -> (start, duration, duration units) field numbers.
_TIMING_FIELDS = {"AIS": (4, 7, 8), "AIG": (8, 11, 12), "AIL": (6, 9, 10), "AIP": (6, 9, 10)}


def appointment(message: Message, mapped: Mapped) -> None:
    sch = message.first("SCH")
    if sch is None:
        raise MappingError("the scheduling message has no SCH segment")
    sender = sender_of(message)
    status = table("appointment_status", sender).get(message.message_type[1])
    if status is None:
        raise MappingError(f"no appointment status for SIU^{message.message_type[1]}")
    subject = patient(message, mapped)
    resources = _resources(message, str(status))
    booking: Json = {
        "resourceType": "Appointment",
        "id": _appointment_id(sch, sender),
        "identifier": _identifiers(sch, sender),
        "status": status,
    }
    booking.update(_reasons(sch, resources, status, sender))
    booking.update(_when(sch, resources, sender))
    if status not in ("proposed", "cancelled", "waitlist") and "start" not in booking:
        raise MappingError("neither SCH-11 nor a resource segment gives the appointment time")
    if orders := _based_on(sch):
        booking["basedOn"] = orders
    if comment := "\n".join(n.value(3) for n in message["NTE"] if n.value(3)):
        booking["comment"] = comment
    booking["participant"] = _participants(subject, resources, sender)
    # S12 books; a reschedule, a modification or a cancel often carries only what changed
    # (the new doctor of an S14), so it updates the booking instead of replacing it
    mapped.add(booking, WriteMode.REPLACE if message.message_type[1] == "S12" else WriteMode.MERGE)


def _appointment_id(sch: Segment, sender: str) -> str:
    for number, kind in ((2, "filler"), (1, "placer")):
        if key := entity_key(sch.components(number), sender):
            return stable_id("apt", kind, *key)
    raise MappingError("SCH-1 and SCH-2 carry no appointment id")


def _identifiers(sch: Segment, sender: str) -> list[Json]:
    found = []
    for number, kind, system in ((1, "PLAC", "placer"), (2, "FILL", "filler")):
        if key := entity_key(sch.components(number), sender):
            namespace, value = key
            found.append(
                {
                    "type": {"coding": [{"system": V2_0203, "code": kind}]},
                    "system": f"urn:jianhu:sid:{system}-appointment:{label(namespace)}",
                    "value": value,
                }
            )
    return found


def _resources(message: Message, status: str) -> list[Segment]:
    """The AIS/AIG/AIL/AIP segments still part of the appointment. A segment action code D
    takes a resource off the booking, except in a cancel, where every resource is released
    with it and the segments still say what was booked."""
    return [
        s
        for s in message
        if s.name in _TIMING_FIELDS and (status == "cancelled" or s.value(2) != "D")
    ]


def _reasons(sch: Segment, resources: list[Segment], status: str, sender: str) -> Json:
    """AIS-3 service, SCH-7 reason, SCH-8 type (the IG's reading); SCH-6 is why this message
    was sent (改约, 替诊), which FHIR keeps only for a cancel."""
    found: Json = {}
    services = [c for s in resources if s.name == "AIS" if (c := codeable(s.components(3), sender))]
    if services:
        found["serviceType"] = services
    if reason := codeable(sch.components(7), sender):
        found["reasonCode"] = [reason]
    if kind := codeable(sch.components(8), sender):
        found["appointmentType"] = kind
    if status == "cancelled" and (why := codeable(sch.components(6), sender)):
        found["cancelationReason"] = why
    description = sch.value(5, 2) or next((c["text"] for c in services if "text" in c), "")
    if description:
        found["description"] = description
    return found


def _when(sch: Segment, resources: list[Segment], sender: str) -> Json:
    """SCH-11 start/end (TQ.4/TQ.5); otherwise the earliest resource start and the latest
    resource end (start + duration). An end missing from SCH-11 comes from SCH-9/SCH-10."""
    start, end = _moment(sch.value(11, 4)), _moment(sch.value(11, 5))
    length = _duration(sch.value(9), sch.value(10), sender)
    if start is None:
        spans = [_span(s, sender) for s in resources]
        starts = [b for b, _ in spans if b is not None]
        ends = [e for _, e in spans if e is not None]
        start, end = min(starts, default=None), max(ends, default=None)
    if start is not None and end is None and length is not None:
        end = start + length
    found: Json = {}
    if start is not None and end is not None and end >= start:
        found.update(start=start.isoformat(), end=end.isoformat())
        length = length or end - start
    minutes = int(length.total_seconds() // 60) if length is not None else 0
    if minutes > 0:
        found["minutesDuration"] = minutes
    return found


def _span(segment: Segment, sender: str) -> tuple[datetime | None, datetime | None]:
    start_field, duration_field, units_field = _TIMING_FIELDS[segment.name]
    start = _moment(segment.value(start_field))
    length = _duration(segment.value(duration_field), segment.value(units_field), sender)
    return start, (start + length if start is not None and length is not None else None)


def _moment(text: str) -> datetime | None:
    """A v2 DTM with at least the minute; Appointment.start is an instant."""
    found = date_time(text)
    return datetime.fromisoformat(found) if found and "T" in found else None


def _duration(amount: str, units: str, sender: str) -> timedelta | None:
    """A duration with its units; v2 takes minutes when the units are left out."""
    try:
        number = float(amount)
    except ValueError:
        return None
    seconds = table("duration_units", sender).get(units.strip().lower() or "min")
    return timedelta(seconds=number * float(seconds)) if seconds and number > 0 else None


def _based_on(sch: Segment) -> list[Json]:
    """SCH-26 placer order numbers; without a namespace the placer is unknown, so no link."""
    return [
        order_reference(*key)
        for rep in range(1, len(sch.repetitions(26)) + 1)
        if (key := entity_key(sch.components(26, rep), None))
    ]


def _participants(subject: Json, resources: list[Segment], sender: str) -> list[Json]:
    """The patient, then AIP personnel and AIL locations as display-only actors."""
    found: list[Json] = [{"actor": reference(subject), "status": "accepted"}]
    for segment in resources:
        participant = _participant(segment, sender)
        if participant is not None and participant not in found:
            found.append(participant)
    return found


def _participant(segment: Segment, sender: str) -> Json | None:
    if segment.name == "AIP" and (person := staff(segment.components(3))):
        participant: Json = {"actor": person, "status": "accepted"}
        if role := codeable(segment.components(4), sender):
            participant["type"] = [role]
        return participant
    if segment.name == "AIL" and (place := _location(segment.components(3))):
        return {"actor": place, "status": "accepted"}
    return None


def _location(components: list[str]) -> Json | None:
    """PL: the location description (PL.9, 呼吸内科门诊) and the room (PL.2, 诊室5)."""
    parts = [components[i] for i in (8, 1, 2) if len(components) > i and components[i]]
    display = " ".join(parts) or (components[0] if components else "")
    return {"type": "Location", "display": display} if display else None
