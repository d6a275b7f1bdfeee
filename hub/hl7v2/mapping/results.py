"""ORU^R01 lab and imaging results: a DiagnosticReport per OBR, an Observation per OBX (value
types NM, ST, TX, FT, CWE, CE, SN, DT, TS; reference range; OBX-8 interpretation; OBX-11
status), a Specimen from SPM. The OBX position within its report is the Observation's key, so a
corrected result (OBX-11 ``C``) becomes a new version of the same Observation.

The report is ``basedOn`` the ServiceRequest of its placer order number (OBR-2/ORC-2 with the
placer's namespace), and the Specimen is built and keyed as ``orders.py`` does for the order,
so the order from the HIS and the result from the LIS meet on the same resources."""

from hub.hl7v2.datatypes import codeable, codes, date_time, table
from hub.hl7v2.mapping.common import (
    Json,
    Mapped,
    encounter,
    instant,
    patient,
    reference,
    stable_id,
)
from hub.hl7v2.mapping.orders import Specimens, order_reference, placer_order_key
from hub.hl7v2.message import Message, Segment


def results(message: Message, mapped: Mapped) -> None:
    """One patient group after another (a batch may carry several): PID, PV1, then OBR/OBX."""
    sender = message.sender[0]
    specimens = Specimens(mapped, sender)
    subject: Json | None = None
    visit: Json | None = None
    order: Segment | None = None
    report: Json | None = None
    specimen: Json | None = None
    position = 0
    for segment in message:
        if segment.name == "PID":
            subject, order, report = patient(message, mapped, segment), None, None
            visit = None
        elif segment.name == "PV1" and subject is not None:
            visit = encounter(message, mapped, subject, pv1=segment)
        elif segment.name == "ORC":
            order = segment  # the common order of the OBR that follows it
        elif segment.name == "OBR" and subject is not None:
            report = _report(message, order, segment, subject, mapped)
            if visit is not None:
                report["encounter"] = reference(visit)
            order, specimen, position = None, None, 0
        elif segment.name == "SPM" and report is not None and subject is not None:
            specimen = _specimen(segment, report, subject, specimens)
        elif segment.name == "OBX" and report is not None and subject is not None:
            position += 1
            _observation(segment, report, subject, specimen, position, sender, mapped)


def _report(
    message: Message, orc: Segment | None, obr: Segment, subject: Json, mapped: Mapped
) -> Json:
    sender = message.sender[0]
    order = obr.value(3) or obr.value(2) or message.control_id
    report: Json = {
        "resourceType": "DiagnosticReport",
        "id": stable_id("rep", sender, order),
        "identifier": [{"system": f"urn:jianhu:sid:filler-order:{sender.lower()}", "value": order}],
        "status": table("report_status", sender).get(obr.value(25), "final"),
        "code": codeable(obr.components(4), sender) or {"text": "未命名检查"},
        "subject": reference(subject),
        "result": [],
    }
    if placer := placer_order_key(orc, obr, None):
        report["basedOn"] = [order_reference(*placer)]
    if effective := date_time(obr.value(7)):
        report["effectiveDateTime"] = effective
    if issued := date_time(obr.value(22)):
        report["issued"] = instant(issued)
    return mapped.add(report)


def _specimen(spm: Segment, report: Json, subject: Json, specimens: Specimens) -> Json:
    """The same Specimen the order made (same key, same content), now with what the lab adds
    (received time, availability); a specimen without barcode is keyed by its order too."""
    request = {"reference": report["basedOn"][0]["reference"]} if "basedOn" in report else None
    owner = request["reference"].split("/")[1] if request else report["id"]
    specimen = specimens.from_spm(spm, subject, request, owner)
    if reference(specimen) not in report.setdefault("specimen", []):
        report["specimen"].append(reference(specimen))
    return specimen


def _observation(
    obx: Segment,
    report: Json,
    subject: Json,
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
        "subject": reference(subject),
    }
    if "encounter" in report:
        observation["encounter"] = report["encounter"]
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
        observation["specimen"] = reference(specimen)
    report["result"].append(reference(observation))
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
