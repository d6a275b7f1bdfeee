"""Pharmacy: RDE^O11 (an encoded order: ORC + RXE, its TQ1 timing and RXR route) to a
MedicationRequest, and RAS^O17 (an administration: ORC + RXA, RXR) to a MedicationAdministration
linked to the request it carries out, after the IG's RXE[MedicationRequest] and
RXA[MedicationAdministration] maps. The influenza reports read oseltamivir and the other
antivirals from them.

The request's key is its placer order number (ORC-2), so the administration the ward records
later meets the prescription; a drug is coded as the sender sends it (RXE-2 / RXA-5, with the
sender's table when CWE.3 is empty)."""

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import date_time, table
from hub.hl7v2.mapping.common import (
    Mapped,
    coded,
    entity_key,
    field_system,
    patient,
    reference,
    sender_of,
    stable_id,
    staff,
)
from hub.hl7v2.mapping.visits import encounter
from hub.hl7v2.message import Message, Segment

# RXA-20 completion status (table 0322) -> MedicationAdministration.status
_COMPLETION = {"CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}


def prescriptions(message: Message, mapped: Mapped) -> None:
    """RDE^O11: a MedicationRequest per ORC/RXE group."""
    subject = patient(message, mapped)
    visit = encounter(message, mapped, subject)
    groups = _groups(message, "RXE")
    if not groups:
        raise MappingError("the pharmacy order has no ORC/RXE group")
    for orc, segments in groups:
        mapped.add(_request(message, orc, segments, subject, visit, mapped))


def administrations(message: Message, mapped: Mapped) -> None:
    """RAS^O17: a MedicationAdministration per RXA, for the request of its ORC."""
    subject = patient(message, mapped)
    visit = encounter(message, mapped, subject)
    groups = _groups(message, "RXA")
    if not groups:
        raise MappingError("the administration message has no ORC/RXA group")
    sender = sender_of(message)
    for orc, segments in groups:
        request = _request_id(orc, sender)
        for rxa in segments["RXA"]:
            mapped.add(_administration(rxa, segments, request, subject, visit, sender, mapped))


def _groups(message: Message, main: str) -> list[tuple[Segment, dict[str, list[Segment]]]]:
    groups: list[tuple[Segment, dict[str, list[Segment]]]] = []
    for segment in message:
        if segment.name == "ORC":
            groups.append((segment, {}))
        elif segment.name in (main, "TQ1", "RXR") and groups:
            groups[-1][1].setdefault(segment.name, []).append(segment)
    return [(orc, found) for orc, found in groups if main in found]


def _request_id(orc: Segment, sender: str) -> str:
    key = entity_key(orc.components(2), sender) or entity_key(orc.components(3), sender)
    if key is None:
        raise MappingError("ORC-2 (or ORC-3) gives no order number")
    return stable_id("medreq", *key)


def _request(
    message: Message,
    orc: Segment,
    segments: dict[str, list[Segment]],
    subject: Json,
    visit: Json | None,
    mapped: Mapped,
) -> Json:
    sender = sender_of(message)
    rxe = segments["RXE"][0]
    drug = coded(rxe.components(2), sender, field_system("RXE-2", sender))
    if drug is None:
        raise MappingError("RXE-2 names no drug")
    control = table("order_control_status", sender).get(orc.value(1))
    state = table("order_status", sender).get(orc.value(5))
    request: Json = {
        "resourceType": "MedicationRequest",
        "id": _request_id(orc, sender),
        "identifier": [_placer(orc, sender)],
        "status": _status(control, state),
        "intent": "order",
        "medicationCodeableConcept": drug,
        "subject": reference(subject),
        "dosageInstruction": [_dosage(rxe, segments, sender)],
    }
    if visit is not None:
        request["encounter"] = reference(visit)
    if authored := date_time(orc.value(9)):
        request["authoredOn"] = authored
    if requester := staff(orc.components(12), mapped):
        requester.pop("type", None)
        request["requester"] = requester
    if amount := _quantity(rxe.value(10), rxe.components(11)):
        request["dispenseRequest"] = {"quantity": amount}
    return request


def _placer(orc: Segment, sender: str) -> Json:
    namespace, number = entity_key(orc.components(2), sender) or ("", "")
    return {"system": f"urn:jianhu:sid:placer-order:{namespace.lower()}", "value": number}


def _status(control: object, state: object) -> str:
    """ORC-1 says what this message does (a cancel whatever ORC-5 reports); ORC-5 refines."""
    if control is not None and control != "active":
        return {"revoked": "cancelled"}.get(str(control), str(control))
    mapped = {"revoked": "cancelled", "entered-in-error": "entered-in-error"}
    return mapped.get(str(state), str(state or control or "unknown"))


def _dosage(rxe: Segment, segments: dict[str, list[Segment]], sender: str) -> Json:
    dosage: Json = {}
    if dose := _quantity(rxe.value(3), rxe.components(5)):
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    timing = segments.get("TQ1", [None])[0]
    if timing is not None and (pattern := coded(timing.components(3), sender, "HL70335")):
        dosage["timing"] = {"code": pattern}  # TQ1-3 repeat pattern: BID, TID, QD ...
    if route := _route(segments, sender):
        dosage["route"] = route
    if text := rxe.value(7, 2) or rxe.value(7, 1):  # RXE-7: the prescriber's instructions
        dosage["text"] = text
    return dosage


def _administration(
    rxa: Segment,
    segments: dict[str, list[Segment]],
    request_id: str,
    subject: Json,
    visit: Json | None,
    sender: str,
    mapped: Mapped,
) -> Json:
    drug = coded(rxa.components(5), sender, field_system("RXE-2", sender))
    if drug is None:
        raise MappingError("RXA-5 names no drug")
    started, ended = date_time(rxa.value(3)), date_time(rxa.value(4))
    if started is None:
        raise MappingError("RXA-3 gives no administration time")
    given: Json = {
        "resourceType": "MedicationAdministration",
        "id": stable_id("medadm", request_id, rxa.value(1) or "0", rxa.value(2) or "1"),
        "status": _COMPLETION.get(rxa.value(20), "completed"),
        "medicationCodeableConcept": drug,
        "subject": reference(subject),
        "request": {"reference": f"MedicationRequest/{request_id}"},
    }
    if ended and ended != started:
        given["effectivePeriod"] = {"start": started, "end": ended}
    else:
        given["effectiveDateTime"] = started
    if visit is not None:
        given["context"] = reference(visit)
    if nurse := staff(rxa.components(10), mapped):  # RXA-10 administering provider
        nurse.pop("type", None)
        given["performer"] = [{"actor": nurse}]
    dosage: Json = {}
    if dose := _quantity(rxa.value(6), rxa.components(7)):
        dosage["dose"] = dose
    if route := _route(segments, sender):
        dosage["route"] = route
    if dosage:
        given["dosage"] = dosage
    return given


def _route(segments: dict[str, list[Segment]], sender: str) -> Json | None:
    """RXR-1, the route (table 0162: PO by mouth, IV intravenous ...)."""
    rxr = segments.get("RXR", [None])[0]
    return coded(rxr.components(1), sender, "HL70162") if rxr is not None else None


def _quantity(amount: str, unit: list[str]) -> Json | None:
    try:
        value = float(amount)
    except ValueError:
        return None
    found: Json = {"value": int(value) if value.is_integer() else value}
    if unit and unit[0]:
        found["unit"] = unit[1] if len(unit) > 1 and unit[1] else unit[0]
        found["code"] = unit[0]
        found["system"] = (
            "http://unitsofmeasure.org"
            if not any("\u4e00" <= char <= "\u9fff" for char in unit[0])
            else "urn:jianhu:codesystem:local:unit"
        )
    return found
