"""ORU^R01 lab and imaging results: a DiagnosticReport per OBR, an Observation per OBX (value
types NM, ST, TX, FT, CWE, CE, SN, DT, TS; reference range; OBX-8 interpretation; OBX-11
status), a Specimen from SPM. The OBX position within its report is the Observation's key, so a
corrected result (OBX-11 ``C``) becomes a new version of the same Observation.

The report is ``basedOn`` the ServiceRequest of its placer order number (OBR-2/ORC-2 with the
placer's namespace), and the Specimen is built and keyed as ``orders.py`` does for the order,
so the order from the HIS and the result from the LIS meet on the same resources."""

import re
from dataclasses import dataclass, field

from hub.base.json import Json
from hub.hl7v2.datatypes import codeable, codes, date_time, table
from hub.hl7v2.mapping.common import (
    Mapped,
    coded,
    instant,
    patient,
    reference,
    stable_id,
    staff,
)
from hub.hl7v2.mapping.imaging import STUDY_UID_CODES, study_from_result, take_uid
from hub.hl7v2.mapping.orders import order_reference, placer_order_key
from hub.hl7v2.mapping.specimens import Specimens
from hub.hl7v2.mapping.visits import encounter
from hub.hl7v2.message import Message, Segment


def results(message: Message, mapped: Mapped) -> None:
    """One patient group after another (a batch may carry several): PID, PV1, then OBR/OBX."""
    reader = _ResultReader(message, mapped)
    for segment in message:
        reader.take(segment)
    reader.close_group()


class _ResultReader:
    """Walks the segments, keeping who and which report the next segment belongs to."""

    def __init__(self, message: Message, mapped: Mapped) -> None:
        self.message, self.mapped = message, mapped
        self.sender = message.sender[0]
        self.specimens = Specimens(mapped, self.sender)
        self.subject: Json | None = None
        self.visit: Json | None = None
        self.order: Segment | None = None
        self.report: Json | None = None
        self.specimen: Json | None = None
        self.study: Json | None = None  # the imaging study of the current OBR, if any
        self.group: _Group | None = None
        self.position = 0

    def take(self, segment: Segment) -> None:
        handler = {
            "PID": self._pid,
            "PV1": self._pv1,
            "ORC": self._orc,
            "OBR": self._obr,
            "SPM": self._spm,
            "OBX": self._obx,
            "ZDS": self._zds,
        }.get(segment.name)
        if handler is not None:
            handler(segment)

    def close_group(self) -> None:
        if self.group is not None:
            self.group.close(self.specimens)
            self.group = None

    def _pid(self, pid: Segment) -> None:
        self.close_group()
        self.subject = patient(self.message, self.mapped, pid)
        self.order, self.report, self.visit = None, None, None

    def _pv1(self, pv1: Segment) -> None:
        if self.subject is not None:
            self.visit = encounter(self.message, self.mapped, self.subject, pv1=pv1)

    def _orc(self, orc: Segment) -> None:
        self.order = orc  # the common order of the OBR that follows it

    def _obr(self, obr: Segment) -> None:
        self.close_group()
        if self.subject is None:
            return
        self.report = _report(self.message, self.order, obr, self.subject, self.mapped)
        if self.visit is not None:
            self.report["encounter"] = reference(self.visit)
        self.study = study_from_result(obr, self.report, self.subject, self.sender, self.mapped)
        self.group = _Group(obr, self.report, self.subject)
        self.order, self.specimen, self.position = None, None, 0

    def _spm(self, spm: Segment) -> None:
        if self.report is None or self.subject is None:
            return
        self.specimen = _specimen(spm, self.report, self.subject, self.specimens)
        if self.group is not None:
            self.group.has_spm = True

    def _zds(self, zds: Segment) -> None:
        take_uid(self.study, zds.value(1))  # IHE: ZDS-1 the study instance UID

    def _obx(self, obx: Segment) -> None:
        if self.report is None or self.subject is None:
            return
        if obx.value(3) in STUDY_UID_CODES:
            take_uid(self.study, obx.value(5))
        self.position += 1
        found = _observation(
            obx,
            self.report,
            self.subject,
            self.specimen,
            self.position,
            self.sender,
            self.mapped,
        )
        if self.group is not None:
            self.group.observations.append(found)


@dataclass
class _Group:
    """One OBR with its OBX: a lab result without SPM still has a tube, told by OBR-14
    (received) or OBR-15 (source); imaging reports have neither and get no Specimen."""

    obr: Segment
    report: Json
    subject: Json
    observations: list[Json] = field(default_factory=list)
    has_spm: bool = False

    def close(self, specimens: Specimens) -> None:
        if self.has_spm or not (self.obr.value(14) or self.obr.value(15)):
            return
        based_on = self.report.get("basedOn")
        request = {"reference": based_on[0]["reference"]} if based_on else None
        owner = request["reference"].split("/")[1] if request else self.report["id"]
        specimen = specimens.from_result_obr(self.obr, self.subject, request, owner)
        self.report["specimen"] = [reference(specimen)]
        for observation in self.observations:
            observation.setdefault("specimen", reference(specimen))


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
    if method := coded(obx.components(17), sender, ""):  # OBX-17: how it was measured
        observation["method"] = method
    observers = (staff(obx.components(16, rep), mapped) for rep in _reps(obx, 16))
    if performers := [person for person in observers if person is not None]:  # OBX-16: by whom
        observation["performer"] = performers
    if device := _analyser(obx.components(18), sender, mapped):  # OBX-18: on what
        observation["device"] = reference(device)
    if specimen is not None:
        observation["specimen"] = reference(specimen)
    report["result"].append(reference(observation))
    return mapped.add(observation)


def _reps(segment: Segment, number: int) -> range:
    return range(1, len(segment.repetitions(number)) + 1)


def _analyser(ei: list[str], sender: str, mapped: Mapped) -> Json | None:
    """OBX-18 equipment instance (EI: id ^ namespace) as a Device, one per message however
    many results name it; written only when the store has none yet."""
    if not ei or not ei[0]:
        return None
    namespace = (ei[1] if len(ei) > 1 and ei[1] else sender).lower()
    device_id = stable_id("dev", namespace, ei[0])
    device: Json = {
        "resourceType": "Device",
        "id": device_id,
        "identifier": [{"system": f"urn:jianhu:sid:device:{namespace}", "value": ei[0]}],
        "deviceName": [{"name": ei[0], "type": "user-friendly-name"}],
    }
    return mapped.context(device)


def _value(obx: Segment, sender: str) -> Json:
    kind, raw = obx.value(2), obx.value(5)
    unit = (obx.components(6) or [""])[0]
    if kind == "NM" or (kind in ("ST", "") and unit and _COMPARED.fullmatch(raw.strip())):
        # a number, with a comparator when the analyser's range ends (">33.3"); some LIS send
        # those as ST with a unit
        quantity = _quantity(raw, unit)
        if quantity is None:
            return {"valueString": raw} if raw else {}
        return {"valueQuantity": quantity}
    if kind in ("CWE", "CE", "CNE"):
        concept = codeable(obx.components(5), sender)
        return {"valueCodeableConcept": concept} if concept else {}
    if kind in ("DT", "TS", "DTM"):
        moment = date_time(raw)
        return {"valueDateTime": moment} if moment else {}
    if kind == "SN":
        return _structured_numeric(obx.components(5), unit)
    if kind == "ED":
        return {}  # document content goes to DocumentReference/Binary (MDM), not a value
    text = "\n".join(obx.value(5, repetition=n) for n in range(1, len(obx.repetitions(5)) + 1))
    return {"valueString": text} if text else {}


_COMPARED = re.compile(r"(<=|>=|<|>)\s*([-+]?\d+(\.\d+)?)")


_DECIMAL = re.compile(r"[-+]?\d{1,15}(\.\d{1,15})?")  # as HL7 NM writes one, in a float's reach


def _number(text: str) -> int | float | None:
    """A decimal as sent (no exponents, no underscores): an integer stays one unless written
    with a point."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    return float(text) if "." in text else int(text)


def _quantity(raw: str, unit: str) -> Json | None:
    text = raw.strip()
    comparator = None
    if compared := _COMPARED.fullmatch(text):
        comparator, text = compared.group(1), compared.group(2)
    number = _number(text)
    if number is None:
        return None
    quantity = _plain(number, unit)
    if comparator:
        quantity["comparator"] = comparator
    return quantity


def _structured_numeric(parts: list[str], unit: str) -> Json:
    """SN (comparator ^ number ^ separator ^ number), after the V2-to-FHIR IG: ``<^0.5`` a
    Quantity with its comparator, ``^10^-^20`` a Range, ``^1^:^128`` a Ratio (a titre); what
    fits none (``^2^+``) stays text."""
    comparator, first, separator, second = [*parts, "", "", "", ""][:4]
    comparator = "" if comparator == "=" else comparator  # "=" says exactly: no comparator
    if not separator:
        quantity = _quantity(f"{comparator}{first}", unit)
        if quantity is not None:
            return {"valueQuantity": quantity}
    low, high = _number(first), _number(second)
    if separator == "-" and low is not None and high is not None and not comparator:
        return {"valueRange": {"low": _plain(low, unit), "high": _plain(high, unit)}}
    if separator in (":", "/") and low is not None and high is not None and not comparator:
        return {"valueRatio": {"numerator": {"value": low}, "denominator": {"value": high}}}
    text = "".join(parts)
    return {"valueString": text} if text else {}


def _plain(number: int | float, unit: str) -> Json:
    quantity: Json = {"value": number}
    if unit:
        quantity.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
    return quantity


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
