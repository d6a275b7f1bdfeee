"""HL7 v2 to FHIR R4, after the HL7 V2-to-FHIR IG: ADT (Patient, Encounter) and ORU^R01
(Patient, Encounter, DiagnosticReport per OBR, an Observation per OBX, Specimen from SPM).

Resource ids are derived from business identifiers (the patient's first identifier, the visit
number, the filler or placer order number, the OBX position within its report), so a replay
or a resend updates the same resources and never duplicates them; a corrected result (OBX-11
``C``) becomes a new version. Each message's resources are written in one store transaction.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hub.hl7v2.datatypes import (
    address,
    codeable,
    codes,
    contact_point,
    date_only,
    date_time,
    human_name,
    identifier,
    table,
)
from hub.hl7v2.message import Message, Segment

Json = dict[str, Any]


def stable_id(kind: str, *parts: str) -> str:
    """A FHIR id from business keys: the same keys give the same id."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
    return f"{kind}-{digest}"


@dataclass
class Mapped:
    resources: list[Json] = field(default_factory=list)

    def add(self, resource: Json) -> Json:
        self.resources.append(resource)
        return resource


class UnmappedMessageError(Exception):
    """No mapping for this message type yet: it stays archived, nothing is written."""


def normalize(message: Message) -> list[Json]:
    code, event, _ = message.message_type
    mapped = Mapped()
    if code == "ADT" and event in ("A01", "A02", "A03", "A04", "A05", "A06", "A08", "A11", "A13"):
        patient = _patient(message, mapped)
        _encounter(message, mapped, patient, event)
    elif (code, event) == ("ORU", "R01"):
        _results(message, mapped)
    else:
        raise UnmappedMessageError(f"{code}^{event} has no FHIR mapping yet")
    return mapped.resources


# --- Patient ---
def _patient(message: Message, mapped: Mapped, pid: Segment | None = None) -> Json:
    sender = message.sender[0]
    pid = pid or message.first("PID")
    if pid is None:
        raise ValueError("the message has no PID segment")
    identifiers = [
        found
        for rep in range(1, len(pid.repetitions(3)) + 1)
        if (found := identifier(pid.components(3, rep), sender))
    ]
    if not identifiers:
        raise ValueError("PID-3 has no patient identifier")
    key = identifiers[0]
    patient: Json = {
        "resourceType": "Patient",
        "id": stable_id("pat", key["system"], key["value"]),
        "identifier": identifiers,
    }
    names = [
        n
        for rep in range(1, len(pid.repetitions(5)) + 1)
        if (n := human_name(pid.components(5, rep)))
    ]
    if names:
        patient["name"] = names
    if gender := table("sex", sender).get(pid.value(8)):
        patient["gender"] = gender
    if birth := date_only(pid.value(7)):
        patient["birthDate"] = birth
    addresses = [
        a
        for rep in range(1, len(pid.repetitions(11)) + 1)
        if (a := address(pid.components(11, rep)))
    ]
    if addresses:
        patient["address"] = addresses
    telecom = [
        found
        for number, use in ((13, "home"), (14, "work"))
        for rep in range(1, len(pid.repetitions(number)) + 1)
        if (found := contact_point(pid.components(number, rep), use))
    ]
    if telecom:
        patient["telecom"] = telecom
    return mapped.add(patient)


def _reference(resource: Json) -> Json:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


# --- Encounter ---
_ENCOUNTER_STATUS = {"A03": "finished", "A11": "cancelled", "A05": "planned", "A13": "in-progress"}


def _encounter(message: Message, mapped: Mapped, patient: Json, event: str = "") -> Json | None:
    pv1 = message.first("PV1")
    if pv1 is None:
        return None
    sender = message.sender[0]
    visit = pv1.value(19) or message.control_id
    patient_class = pv1.value(2)
    act = table("patient_class", sender).get(patient_class, "AMB")
    encounter: Json = {
        "resourceType": "Encounter",
        "id": stable_id("enc", sender, visit),
        "identifier": [{"system": f"urn:jianhu:sid:visit:{sender.lower()}", "value": visit}],
        "status": _ENCOUNTER_STATUS.get(event, "finished" if pv1.value(45) else "in-progress"),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": act},
        "subject": _reference(patient),
    }
    start, end = date_time(pv1.value(44)), date_time(pv1.value(45))
    if start or end:
        encounter["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    location = pv1.components(3)
    if any(location):
        encounter["location"] = [{"location": {"display": " ".join(p for p in location[:3] if p)}}]
    return mapped.add(encounter)


# --- ORU^R01 ---
def _results(message: Message, mapped: Mapped) -> None:
    """One patient group after another (a batch may carry several): PID, PV1, then OBR/OBX."""
    sender = message.sender[0]
    patient: Json | None = None
    report: Json | None = None
    specimen: Json | None = None
    position = 0
    for segment in message:
        if segment.name == "PID":
            patient, report = _patient(message, mapped, segment), None
        elif segment.name == "OBR" and patient is not None:
            report, specimen, position = _report(message, segment, patient, mapped), None, 0
        elif segment.name == "SPM" and report is not None and patient is not None:
            specimen = _specimen(segment, report, patient, sender, mapped)
        elif segment.name == "OBX" and report is not None and patient is not None:
            position += 1
            _observation(segment, report, patient, specimen, position, sender, mapped)


def _report(message: Message, obr: Segment, patient: Json, mapped: Mapped) -> Json:
    sender = message.sender[0]
    order = obr.value(3) or obr.value(2) or message.control_id
    report: Json = {
        "resourceType": "DiagnosticReport",
        "id": stable_id("rep", sender, order),
        "identifier": [{"system": f"urn:jianhu:sid:filler-order:{sender.lower()}", "value": order}],
        "status": table("report_status", sender).get(obr.value(25), "final"),
        "code": codeable(obr.components(4), sender) or {"text": "未命名检查"},
        "subject": _reference(patient),
        "result": [],
    }
    if effective := date_time(obr.value(7)):
        report["effectiveDateTime"] = effective
    if issued := date_time(obr.value(22)):
        report["issued"] = _instant(issued)
    return mapped.add(report)


def _instant(value: str) -> str:
    """FHIR instant needs seconds and a zone; v2 may give less."""
    return value if len(value) >= 25 else f"{value[:10]}T00:00:00+08:00"


def _specimen(spm: Segment, report: Json, patient: Json, sender: str, mapped: Mapped) -> Json:
    number = spm.value(2, 1) or spm.value(2, 2) or report["id"]
    specimen: Json = {
        "resourceType": "Specimen",
        "id": stable_id("spc", sender, number),
        "identifier": [{"system": f"urn:jianhu:sid:specimen:{sender.lower()}", "value": number}],
        "subject": _reference(patient),
    }
    if kind := codeable(spm.components(4), sender):
        specimen["type"] = kind
    if collected := date_time(spm.value(17)):
        specimen["collection"] = {"collectedDateTime": collected}
    report["specimen"] = [_reference(specimen)]
    return mapped.add(specimen)


def _observation(
    obx: Segment,
    report: Json,
    patient: Json,
    specimen: Json | None,
    position: int,
    sender: str,
    mapped: Mapped,
) -> Json:
    observation: Json = {
        "resourceType": "Observation",
        "id": stable_id("obs", report["id"], str(position)),
        "status": table("observation_status", sender).get(obx.value(11), "final"),
        "code": codeable(obx.components(3), sender) or {"text": "未命名项目"},
        "subject": _reference(patient),
    }
    observation.update(_value(obx, sender))
    if unit_range := obx.value(7):
        observation["referenceRange"] = [_range(unit_range, obx.value(6))]
    flags = [f for f in obx.repetitions(8) if f in codes("interpretation")]
    if flags:
        observation["interpretation"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": flag,
                    }
                ]
            }
            for flag in flags
        ]
    if effective := date_time(obx.value(14)) or report.get("effectiveDateTime"):
        observation["effectiveDateTime"] = effective
    if specimen is not None:
        observation["specimen"] = _reference(specimen)
    report["result"].append(_reference(observation))
    return mapped.add(observation)


def _value(obx: Segment, sender: str) -> Json:
    kind, raw = obx.value(2), obx.value(5)
    units = obx.components(6)
    if kind == "NM":
        try:
            number = float(raw)
        except ValueError:
            return {"valueString": raw} if raw else {}
        quantity: Json = {
            "value": int(number) if number.is_integer() and "." not in raw else number
        }
        if units and units[0]:
            quantity.update(
                {"unit": units[0], "system": "http://unitsofmeasure.org", "code": units[0]}
            )
        return {"valueQuantity": quantity}
    if kind in ("CWE", "CE", "CNE"):
        concept = codeable(obx.components(5), sender)
        return {"valueCodeableConcept": concept} if concept else {}
    if kind in ("DT", "TS", "DTM"):
        moment = date_time(raw)
        return {"valueDateTime": moment} if moment else {}
    if kind == "SN":
        parts = obx.components(5)
        text = "".join(parts)
        return {"valueString": text} if text else {}
    if kind == "ED":
        return {}  # document content goes to DocumentReference/Binary (MDM), not a value
    text = "\n".join(obx.value(5, repetition=n) for n in range(1, len(obx.repetitions(5)) + 1))
    return {"valueString": text} if text else {}


def _range(text: str, unit: str) -> Json:
    low, _, high = text.partition("-")
    found: Json = {"text": text}
    try:
        if low.strip():
            found["low"] = {"value": float(low)}
        if high.strip():
            found["high"] = {"value": float(high)}
    except ValueError:
        return {"text": text}
    return found
