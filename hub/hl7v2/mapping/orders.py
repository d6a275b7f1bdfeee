"""ORM^O01 and OML^O21 orders: a ServiceRequest per ORC/OBR group and a Specimen per SPM (or
from the OBR specimen fields), after the V2-to-FHIR IG's ORC/OBR[ServiceRequest] and
SPM[Specimen] maps.

The placer order number (ORC-2/OBR-2) and the specimen barcode (SPM-2) are keyed by the
application that assigned them (EI.2), not by the sender of the message: the HIS and the EMR
both issue numbers like ``2603050388001``, and the LIS echoes number and namespace in its
ORU^R01. So an order and its later result meet on the same ServiceRequest and Specimen ids;
``results.py`` builds its ids with the functions of this module, its Specimens with
``specimens.py``.
"""

import re
from dataclasses import dataclass, field

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import codeable, date_time, table
from hub.hl7v2.mapping.common import (
    V2_0203,
    Mapped,
    entity_key,
    label,
    patient,
    reference,
    sender_of,
    stable_id,
    staff,
)
from hub.hl7v2.mapping.imaging import study_from_order
from hub.hl7v2.mapping.specimens import Specimens
from hub.hl7v2.mapping.visits import encounter
from hub.hl7v2.message import Message, Segment

V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"  # diagnostic service sections

# ORC-9 is the time the order was placed only when the message places it; on a cancel it is
# the time of the cancel, which must not overwrite the original authoredOn.
_PLACING_CONTROLS = frozenset({"NW", "SN"})


# --- keys shared with results.py ---


def placer_order_key(
    orc: Segment | None, obr: Segment | None, default_namespace: str | None
) -> tuple[str, str] | None:
    """The placer order number, OBR-2 or else ORC-2. An order message passes its sender as
    the default namespace (the sender placed the order); a result passes None, because the
    filler cannot tell who placed an order whose number carries no namespace."""
    return entity_key(_order_number(orc, obr, 2), default_namespace)


# The placer namespace of the orders the hub itself sends (``hub.orders``): their number is the
# ServiceRequest's own id, so the result that comes back files under the order it answers.
HUB_PLACER = "JIANHU"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def service_request_id(namespace: str, number: str) -> str:
    if namespace == HUB_PLACER and _FHIR_ID.match(number):
        return number
    return stable_id("req", namespace, number)


def order_identifier(kind: str, namespace: str, number: str) -> Json:
    """PLAC / FILL order number, or PGN placer group number."""
    system = {"PLAC": "placer-order", "FILL": "filler-order", "PGN": "placer-group"}[kind]
    return {
        "type": {"coding": [{"system": V2_0203, "code": kind}]},
        "system": f"urn:jianhu:sid:{system}:{label(namespace)}",
        "value": number,
    }


def order_reference(namespace: str, number: str) -> Json:
    """A reference to the ServiceRequest of a placer order number, with the number itself, so
    it says which order is meant even before (or without) the order message reaching us."""
    return {
        "reference": f"ServiceRequest/{service_request_id(namespace, number)}",
        "identifier": order_identifier("PLAC", namespace, number),
    }


@dataclass
class _OrderGroup:
    """ORC, its TQ1 and OBR, then what belongs to the OBR (NTE, DG1, SPM)."""

    orc: Segment | None
    obr: Segment | None = None
    timing: Segment | None = None
    details: list[Segment] = field(default_factory=list)


def orders(message: Message, mapped: Mapped) -> None:
    """ORM^O01 / OML^O21: the patient, the visit when PV1 is sent, then each order."""
    groups = _order_groups(message)
    if not groups:
        raise MappingError("the order message has no ORC or OBR segment")
    subject = patient(message, mapped)
    visit = encounter(message, mapped, subject)
    specimens = Specimens(mapped, sender_of(message))
    for group in groups:
        _order(message, group, subject, visit, specimens)


def _order_groups(message: Message) -> list[_OrderGroup]:
    groups: list[_OrderGroup] = []
    for segment in message:
        name = segment.name
        current = groups[-1] if groups else None
        if name == "ORC":
            groups.append(_OrderGroup(segment))
        elif name == "OBR" and (current is None or current.obr is not None):
            # an OBR without an ORC of its own is taken to share the ORC before it
            groups.append(_OrderGroup(current.orc if current else None, obr=segment))
        elif current is None:
            continue  # patient-level segments (NTE after PID, NK1, ...)
        elif name == "OBR":
            current.obr = segment
        elif name == "TQ1" and current.timing is None:
            current.timing = segment
        elif name in ("NTE", "DG1", "SPM", "IPC") and current.obr is not None:
            current.details.append(segment)
    return groups


def _order(
    message: Message, group: _OrderGroup, subject: Json, visit: Json | None, specimens: Specimens
) -> Json:
    sender = sender_of(message)
    request = specimens.mapped.add(
        _service_request(message, group, subject, visit, specimens.mapped)
    )
    for segment in group.details:
        if segment.name == "NTE" and (text := segment.value(3)):
            request.setdefault("note", []).append({"text": text})
        elif segment.name == "DG1" and (reason := codeable(segment.components(3), sender)):
            request.setdefault("reasonCode", []).append(reason)
        elif segment.name == "SPM":
            specimen = specimens.from_spm(segment, subject, reference(request), request["id"])
            _add_specimen(request, specimen)
        elif segment.name == "IPC":  # OMI^O23: the study the PACS is to make
            study_from_order(segment, request, subject, sender, specimens.mapped)
    imaging = any(segment.name == "IPC" for segment in group.details)
    if "specimen" not in request and group.obr is not None and not imaging:
        _add_specimen(request, specimens.from_obr(group.obr, subject, request))
    return request


def _add_specimen(request: Json, specimen: Json | None) -> None:
    if specimen is not None and reference(specimen) not in request.setdefault("specimen", []):
        request["specimen"].append(reference(specimen))


def _service_request(
    message: Message, group: _OrderGroup, subject: Json, visit: Json | None, mapped: Mapped
) -> Json:
    sender = sender_of(message)
    orc, obr = group.orc, group.obr
    control = orc.value(1) if orc else ""
    request: Json = {
        "resourceType": "ServiceRequest",
        "id": _request_id(message, orc, obr),
        "identifier": _identifiers(message, orc, obr),
        "status": _status(orc, sender),
        "intent": table("order_intent", sender).get(control, "order"),
        "subject": reference(subject),
    }
    if group_number := entity_key(orc.components(4) if orc else [], sender):
        request["requisition"] = order_identifier("PGN", *group_number)
    if priority := _priority(group, sender):
        request["priority"] = priority
    if visit is not None:
        request["encounter"] = reference(visit)
    if control in _PLACING_CONTROLS and orc and (authored := date_time(orc.value(9))):
        request["authoredOn"] = authored
    if requester := _requester(orc, obr, mapped):
        request["requester"] = requester
    if obr is not None:
        request.update(_requested_service(obr, group.timing, sender))
    return request


def _request_id(message: Message, orc: Segment | None, obr: Segment | None) -> str:
    sender = sender_of(message)
    if placer := placer_order_key(orc, obr, sender):
        return service_request_id(*placer)
    if filler := entity_key(_order_number(orc, obr, 3), message.receiver[0] or None):
        return stable_id("req", "filler", *filler)
    raise MappingError("the order has neither a placer (ORC-2/OBR-2) nor a filler order number")


def _identifiers(message: Message, orc: Segment | None, obr: Segment | None) -> list[Json]:
    found = []
    if placer := placer_order_key(orc, obr, sender_of(message)):
        found.append(order_identifier("PLAC", *placer))
    # the filler of an order message is its receiving application
    if filler := entity_key(_order_number(orc, obr, 3), message.receiver[0] or None):
        found.append(order_identifier("FILL", *filler))
    return found


def _order_number(orc: Segment | None, obr: Segment | None, number: int) -> list[str]:
    """OBR-2/ORC-2 (placer) or OBR-3/ORC-3 (filler). The two carry the same number in a
    well-formed message; where they differ the ORC belongs to another OBR (two OBRs under one
    ORC, an ORU group without ORC), so the OBR's own number is the one to trust."""
    for segment in (obr, orc):
        if segment is not None and segment.value(number):
            return segment.components(number)
    return []


def _status(orc: Segment | None, sender: str) -> str:
    if orc is None:
        return "unknown"
    control = table("order_control_status", sender).get(orc.value(1))
    state = table("order_status", sender).get(orc.value(5))
    # ORC-1 says what this message does: a cancel or a hold is that whatever ORC-5 still
    # reports; ORC-5 refines a message that only passes an order on (NW, SC).
    if control is not None and control != "active":
        return str(control)
    return str(state or control or "unknown")


def _priority(group: _OrderGroup, sender: str) -> str | None:
    """TQ1-9 (v2.5), else the priority component of ORC-7 / OBR-27 (TQ.6), else OBR-5."""
    candidates = [group.timing.value(9) if group.timing else ""]
    candidates += [s.value(n, 6) for s, n in ((group.orc, 7), (group.obr, 27)) if s]
    candidates += [group.obr.value(5)] if group.obr else []
    priorities = table("order_priority", sender)
    return next((str(priorities[c]) for c in candidates if c in priorities), None)


def _requester(orc: Segment | None, obr: Segment | None, mapped: Mapped) -> Json | None:
    """ORC-12 ordering provider, else OBR-16: a Practitioner when numbered."""
    for segment, number in ((orc, 12), (obr, 16)):
        if segment is not None and (found := staff(segment.components(number), mapped)):
            return found
    return None


def _requested_service(obr: Segment, timing: Segment | None, sender: str) -> Json:
    """What the OBR says about the service: code, category, when, why, clinical info."""
    found: Json = {}
    if code := codeable(obr.components(4), sender):
        found["code"] = code
    if section := obr.value(24):
        found["category"] = [{"coding": [{"system": V2_0074, "code": section}]}]
    start = obr.value(6) or (timing.value(7) if timing else "") or obr.value(27, 4)
    if occurrence := date_time(start):
        found["occurrenceDateTime"] = occurrence
    reasons = [
        r
        for rep in range(1, len(obr.repetitions(31)) + 1)
        if (r := codeable(obr.components(31, rep), sender))
    ]
    if reasons:
        found["reasonCode"] = reasons
    if clinical := obr.value(13):  # 临床信息, what the radiologist reads first
        found["note"] = [{"text": clinical}]
    return found
