"""The LIS's status messages into the store, so a tube's and an order's progress is visible
through the FHIR API (the lab screen reads the same messages for its stages, by the site's
configuration): SSU^U03 to each container's Specimen, ORL^O22 to a Task per order.

- SSU^U03: per SAC, the Specimen of its barcode (SAC-3, keyed as the order's SPM-2 keys it),
  merged: the container status SAC-8 as sent (the LIS's own codes, or table 0370) and its time
  (EQU-2, else MSH-7) as the latest processing step, SAC-2 the LIS's accession number; status
  X (container unavailable) makes the Specimen unavailable.
- ORL^O22: per ORC, a Task on the ServiceRequest of its placer number: ORC-1 (OK accepted, UA
  refused, CA cancelled) and ORC-5 (SC, IP, CM, CA, HD) as the Task's status, ORC-5 as its
  business status, the tubes of its SPMs as its input, the LIS as its owner."""

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import date_time
from hub.hl7v2.mapping.common import (
    V2_0203,
    Mapped,
    WriteMode,
    coded,
    label,
    patient,
    reference,
    sender_of,
    stable_id,
)
from hub.hl7v2.mapping.orders import placer_order_key, service_request_id
from hub.hl7v2.mapping.specimens import Specimens, specimen_key
from hub.hl7v2.message import Message, Segment

V2_0038 = "http://terminology.hl7.org/CodeSystem/v2-0038"  # order status
_CONTROL = {"OK": "accepted", "UA": "rejected", "UX": "rejected", "CA": "cancelled"}
_CONTROL |= {"CR": "cancelled", "OC": "cancelled", "DC": "cancelled", "CH": "in-progress"}
_STATE = {"SC": "accepted", "IP": "in-progress", "A": "in-progress", "CM": "completed"}
_STATE |= {"CA": "cancelled", "DC": "cancelled", "HD": "on-hold", "ER": "entered-in-error"}


def container_status(message: Message, mapped: Mapped) -> None:
    """SSU^U03: the latest status of each container the LIS reports."""
    sender = sender_of(message)
    equ = message.first("EQU")
    at = (date_time(equ.value(2)) if equ is not None else None) or date_time(message.msh.value(7))
    containers = [sac for sac in message["SAC"] if sac.value(3)]
    if not containers:
        raise MappingError("the status update names no container (SAC-3)")
    for sac in containers:
        mapped.add(_specimen(sac, sender, at), WriteMode.MERGE)


def _specimen(sac: Segment, sender: str, at: str | None) -> Json:
    namespace, barcode = sac.value(3, 2) or sender, sac.value(3, 1)
    specimen: Json = {
        "resourceType": "Specimen",
        "id": stable_id("spc", namespace, barcode),
        "identifier": [
            {
                "type": {"coding": [{"system": V2_0203, "code": "PLAC"}]},
                "system": f"urn:jianhu:sid:specimen:{label(namespace)}",
                "value": barcode,
            }
        ],
    }
    if accession := sac.value(2):
        specimen["accessionIdentifier"] = {
            "system": f"urn:jianhu:sid:accession:{label(sender)}",
            "value": accession,
        }
    step: Json = {}
    if state := coded(sac.components(8), sender, "HL70370"):
        step["procedure"] = state
        step["description"] = state.get("text") or sac.value(8)
    if at:
        step["timeDateTime"] = at
    if step:
        specimen["processing"] = [step]
    if sac.value(8) == "X":
        specimen["status"] = "unavailable"
    return specimen


def order_status(message: Message, mapped: Mapped) -> None:
    """ORL^O22: a Task per ORC, on the ServiceRequest of its placer number."""
    sender = sender_of(message)
    subject = patient(message, mapped) if message.first("PID") is not None else None
    groups = _groups(message)
    if not groups:
        raise MappingError("the order acknowledgement has no ORC segment")
    for orc, obr, spms in groups:
        placer = placer_order_key(orc, obr, None)
        if placer is None:
            raise MappingError("ORC-2 (or OBR-2) gives no placer order number")
        request_id = service_request_id(*placer)
        task: Json = {
            "resourceType": "Task",
            "id": stable_id("task", request_id),
            "status": _status(orc),
            "intent": "order",
            "focus": {"reference": f"ServiceRequest/{request_id}"},
            "owner": {"display": message.sender[0]},
        }
        if orc.value(5):
            task["businessStatus"] = {"coding": [{"system": V2_0038, "code": orc.value(5)}]}
        if subject is not None:
            task["for"] = reference(subject)
        if when := date_time(orc.value(9)) or date_time(message.msh.value(7)):
            task["lastModified"] = when
        if tubes := _tubes(spms, subject, request_id, Specimens(mapped, sender)):
            task["input"] = [
                {"type": {"text": "specimen"}, "valueReference": tube} for tube in tubes
            ]
        mapped.add(task)


def _tubes(
    spms: list[Segment], subject: Json | None, request_id: str, specimens: Specimens
) -> list[Json]:
    """The order's tubes as the LIS echoes them (SPM-2), merged into their Specimens when the
    message names the patient; keyed as the order's SPM keys them."""
    request = {"reference": f"ServiceRequest/{request_id}"}
    found = []
    for spm in spms:
        if subject is not None:
            found.append(reference(specimens.from_spm(spm, subject, request, request_id)))
        elif key := specimen_key(spm, specimens.sender):
            found.append({"reference": f"Specimen/{stable_id('spc', *key)}"})
    return found


def _status(orc: Segment) -> str:
    """ORC-1 when it decides (a refusal, a cancel), else ORC-5, else what ORC-1 says."""
    control = _CONTROL.get(orc.value(1))
    if control in ("rejected", "cancelled"):
        return control
    return _STATE.get(orc.value(5), control or "accepted")


def _groups(message: Message) -> list[tuple[Segment, Segment | None, list[Segment]]]:
    groups: list[tuple[Segment, Segment | None, list[Segment]]] = []
    for segment in message:
        if segment.name == "ORC":
            groups.append((segment, None, []))
        elif groups and segment.name == "OBR" and groups[-1][1] is None:
            orc, _, spms = groups[-1]
            groups[-1] = (orc, segment, spms)
        elif groups and segment.name == "SPM":
            groups[-1][2].append(segment)
    return groups
