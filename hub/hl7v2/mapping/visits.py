"""PV1 and PV2 to the Encounter: the visit's class, status and period, its doctors (each a
Practitioner when numbered), its department, its admission and discharge, and where the patient
is and was (ward, room and bed, each a Location), after the IG's PV1[Encounter] map."""

from hub.base.json import Json
from hub.hl7v2.datatypes import date_time, table
from hub.hl7v2.mapping.common import (
    Mapped,
    coded,
    context_mode,
    field_system,
    reference,
    sender_of,
    stable_id,
    staff,
)
from hub.hl7v2.message import Message, Segment

PLANNED_START = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedStartDate"
PLANNED_END = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"
_ENCOUNTER_STATUS = {"A03": "finished", "A11": "cancelled", "A05": "planned", "A13": "in-progress"}

# Encounter.location.status follows the encounter: the IG has "active", "planned" for a
# pre-admission; a finished stay's places are "completed". A cancelled stay's places get none.
_LOCATION_STATUS = {"planned": "planned", "in-progress": "active", "finished": "completed"}
_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
_PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# PV1 doctor fields and their participant type, after the IG's PV1[Encounter] map.
_DOCTORS = (
    (7, "ATND", "attender"),
    (8, "REF", "referrer"),
    (9, "CON", "consultant"),
    (17, "ADM", "admitter"),
)


def encounter(
    message: Message, mapped: Mapped, subject: Json, event: str = "", pv1: Segment | None = None
) -> Json | None:
    """The visit of PV1 (the message's first, or ``pv1`` in a batch). Without a visit number
    only ADT makes one (keyed by the message); other messages have nothing to link to."""
    pv1 = pv1 or message.first("PV1")
    if pv1 is None:
        return None
    if not pv1.value(19) and message.message_type[0] != "ADT":
        return None
    sender = sender_of(message)
    visit = pv1.value(19) or message.control_id
    # Visit numbers are the hospital's (the HIS issues them; every system quotes them), so the
    # key is the assigning facility, not the sender: the LIS's result, the EMR's order and the
    # HIS's admission of one visit meet on one Encounter.
    facility = pv1.value(19, 4) or message.sender[1] or sender
    act = table("patient_class", sender).get(pv1.value(2), "AMB")
    resource: Json = {
        "resourceType": "Encounter",
        "id": stable_id("enc", facility, visit),
        "identifier": [{"system": f"urn:jianhu:sid:visit:{facility.lower()}", "value": visit}],
        "status": _ENCOUNTER_STATUS.get(event, "finished" if pv1.value(45) else "in-progress"),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": act},
        "subject": reference(subject),
    }
    start, end = date_time(pv1.value(44)), date_time(pv1.value(45))
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    if admission_type := coded(pv1.components(4), sender, field_system("PV1-4", sender)):
        resource["type"] = [admission_type]
    if service := coded(pv1.components(10), sender, field_system("PV1-10", sender)):
        resource["serviceType"] = service
    if participants := _participants(pv1, mapped):
        resource["participant"] = participants
    if hospitalization := _hospitalization(pv1, sender):
        resource["hospitalization"] = hospitalization
    if locations := _locations(message, pv1, resource["status"], event, mapped):
        resource["location"] = locations
    if (pv2 := message.first("PV2")) is not None:
        resource.update(_expected(pv2, sender, resource.get("extension", [])))
    return mapped.add(resource, context_mode(message))


def _expected(pv2: Segment, sender: str, extensions: list[Json]) -> Json:
    """PV2-3 why the patient is admitted (入院原因), PV2-8 / PV2-9 the expected admission and
    discharge (FHIR R4 has no element for them: R5's plannedStartDate and plannedEndDate, as
    cross-version extensions), PV2-12 the visit's description."""
    found: Json = {}
    if reason := coded(pv2.components(3), sender, field_system("PV2-3", sender)):
        found["reasonCode"] = [reason]
    planned = [
        {"url": url, "valueDateTime": when}
        for url, number in ((PLANNED_START, 8), (PLANNED_END, 9))
        if (when := date_time(pv2.value(number)))
    ]
    if planned:
        found["extension"] = [*extensions, *planned]
    if description := pv2.value(12):
        found["text"] = {"status": "generated", "div": _div(description)}
    return found


def _div(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{escaped}</div>'


def _participants(pv1: Segment, mapped: Mapped) -> list[Json]:
    """The visit's doctors, each a Practitioner when the HIS sends the staff number."""
    found = []
    for number, code, label in _DOCTORS:
        for rep in range(1, len(pv1.repetitions(number)) + 1):
            if person := staff(pv1.components(number, rep), mapped):
                kind = {"system": _PARTICIPATION_TYPE, "code": code, "display": label}
                person.pop("type", None)
                found.append({"type": [{"coding": [kind]}], "individual": person})
    return found


def _hospitalization(pv1: Segment, sender: str) -> Json:
    found: Json = {}
    if preadmit := pv1.value(5):
        found["preAdmissionIdentifier"] = {
            "system": f"urn:jianhu:sid:preadmission:{sender.lower()}",
            "value": preadmit,
        }
    # PV1-14 carries the front page's 入院途径 (RYTJ) and PV1-36 its 离院方式 (LYFS): the codes
    # are kept as sent, in their Chinese code systems, for the DRG front page.
    for key, number in (("admitSource", 14), ("dischargeDisposition", 36)):
        if concept := coded(pv1.components(number), sender, field_system(f"PV1-{number}", sender)):
            found[key] = concept
    # PV1-37 names the receiving institution when 离院方式 is a transfer (2 or 3), which the
    # DRG front page requires (拟接收医疗机构): kept as a display reference with its code
    destination = pv1.components(37)
    if any(destination[:2]):
        place: Json = {"display": destination[1] if len(destination) > 1 else destination[0]}
        if destination[0]:
            place["identifier"] = {
                "system": f"urn:jianhu:sid:institution:{sender.lower()}",
                "value": destination[0],
            }
        found["destination"] = place
    return found


def _locations(
    message: Message, pv1: Segment, status: str, event: str, mapped: Mapped
) -> list[Json]:
    """PV1-3 (where the patient is) and PV1-6 (where they were before a transfer), each as ward,
    room and bed entries told apart by physicalType, so nobody has to parse "病区 床位" text.
    On an A02 the transfer time (EVN-6, else EVN-2) ends the old place and starts the new."""
    sender = sender_of(message)
    current = _place(pv1.components(3), sender, _LOCATION_STATUS.get(status), mapped)
    prior = _place(pv1.components(6), sender, "completed", mapped)
    evn = message.first("EVN")
    moved = evn is not None and event == "A02" and date_time(evn.value(6) or evn.value(2))
    if moved:
        for entry in current:
            entry["period"] = {"start": moved}
        for entry in prior:
            entry["period"] = {"end": moved}
    return current + prior


def _place(pl: list[str], sender: str, status: str | None, mapped: Mapped) -> list[Json]:
    """PL: .1 point of care (the ward or clinic), .2 room, .3 bed, .9 description. Each level
    is a Location in the store (bed part of room part of ward), written when missing: the
    locations master file (MFN^M05) owns their content."""
    parts = [*pl, *[""] * 9][:9]
    point, room, bed, description = parts[0], parts[1], parts[2], parts[8]
    ward: Json = {"display": description or point}
    if point and description:  # with a description beside it, PL.1 is the ward's code
        ward["identifier"] = {"system": f"urn:jianhu:sid:ward:{sender.lower()}", "value": point}
    levels = (
        ("wa", "Ward", ward, (point,)),
        ("ro", "Room", {"display": room}, (point, room)),
        ("bd", "Bed", {"display": bed}, (point, room, bed)),
    )
    entries = []
    above: Json | None = None
    for code, label, where, key in levels:
        if not where["display"]:
            continue
        kind: Json = {"coding": [{"system": _PHYSICAL_TYPE, "code": code, "display": label}]}
        if point:
            place = mapped.context(location_resource(sender, key, where, kind, above))
            where = {"reference": f"Location/{place['id']}", **where}
            above = place
        entry: Json = {"location": where, "physicalType": kind}
        if status:
            entry["status"] = status
        entries.append(entry)
    return entries


def location_resource(
    sender: str, key: tuple[str, ...], where: Json, kind: Json, above: Json | None
) -> Json:
    """A ward, room or bed as a Location, keyed by the sender's codes from the ward down."""
    place: Json = {
        "resourceType": "Location",
        "id": stable_id("loc", sender.lower(), *key),
        "status": "active",
        "mode": "instance",
        "name": where["display"],
        "physicalType": kind,
    }
    if "identifier" in where:
        place["identifier"] = [where["identifier"]]
    if above is not None:
        place["partOf"] = {"reference": f"Location/{above['id']}", "display": above["name"]}
    return place
