"""A ServiceRequest as the order message its performer takes: ORM^O01, OML^O21 (laboratory) or
OMI^O23 (imaging), v2.5, UTF-8. The placer order number (ORC-2, OBR-2) is the ServiceRequest's
id in the hub's namespace (``JIANHU``), so the result the performer sends back, which echoes it in
OBR-2, files under the same ServiceRequest. ORC-1 says what happens to the order: NW new, XO
changed, CA cancelled."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.hl7v2.ack import CHINA, timestamp
from hub.hl7v2.mapping.orders import HUB_PLACER
from hub.hl7v2.message import Delimiters

Json = dict[str, Any]
_D = Delimiters()
_GENDER = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_CLASS = {"IMP": "I", "AMB": "O", "EMER": "E", "PRENC": "P", "OBSENC": "I"}
_CODING_SYSTEMS = {"http://loinc.org": "LN", "http://snomed.info/sct": "SCT"}
_STRUCTURE = {"ORM^O01": "ORM_O01", "OML^O21": "OML_O21", "OMI^O23": "OMI_O23"}


@dataclass(frozen=True)
class Order:
    request: Json  # the ServiceRequest
    patient: Json
    encounter: Json | None
    control: str  # ORC-1: NW, XO, CA
    message: str  # ORM^O01, OML^O21, OMI^O23
    receiver: str
    facility: str
    requester: Json | None = None  # the Practitioner the request's requester points to


def control_id(request_id: str, version: str) -> str:
    """MSH-10 (20 characters at most): the same for one version, so a repeat is a resend."""
    return hashlib.sha256(f"{request_id}/{version}".encode()).hexdigest()[:20].upper()


def order_message(order: Order, now: datetime | None = None) -> str:
    request = order.request
    version = str((request.get("meta") or {}).get("versionId", "1"))
    code, event = order.message.split("^")
    msh = [
        "MSH", "^~\\&", "JIANHU", order.facility, order.receiver, order.facility,
        timestamp(now), "", f"{code}^{event}^{_STRUCTURE[order.message]}",
        control_id(request["id"], version), "P", "2.5", "", "", "", "", "", "UNICODE UTF-8",
    ]  # fmt: skip
    placer = f"{_e(request['id'])}^{HUB_PLACER}"
    filler = _identifier(request, "FILL")
    requester = _xcn(request.get("requester") or {}, order.requester)
    when = _ts(request.get("occurrenceDateTime") or request.get("authoredOn") or "")
    # ORC-9: when this happened to the order: its placing, or the version's time for a change
    # or a cancel (not the clock's: the same version must make the same message, a resend)
    changed = (request.get("meta") or {}).get("lastUpdated")
    happened = _ts(request.get("authoredOn") if order.control == "NW" else changed)
    orc = ["ORC", order.control, placer, filler, "", "", "", "", "", happened, "", "", requester]
    obr = ["OBR", "1", placer, filler, _code(request.get("code") or {}), "", "", when]
    obr += [""] * 8 + [requester]  # OBR-16 ordering provider
    segments = [
        "|".join(msh),
        "|".join(_pid(order.patient)),
        "|".join(["PV1", "1", _patient_class(order.encounter), *[""] * 16, _visit(order)]),
        "|".join(orc),
        "|".join(obr),
    ]
    if order.message == "OMI^O23":
        segments.append("|".join(_ipc(request["id"])))
    return "\r".join(segments) + "\r"


def _pid(patient: Json) -> list[str]:
    identifiers = "~".join(
        f"{_e(i['value'])}^^^{_namespace(i.get('system', ''))}^{_type_code(i)}"
        for i in patient.get("identifier", [])
        if i.get("value")
    )
    names = patient.get("name") or [{}]
    name = names[0]
    family, given = name.get("family", ""), "".join(name.get("given", []))
    xpn = f"{_e(family)}^{_e(given)}" if family or given else _e(name.get("text", ""))
    birth = (patient.get("birthDate") or "").replace("-", "")
    sex = _GENDER.get(str(patient.get("gender", "")), "")
    return ["PID", "1", "", identifiers, "", xpn, "", birth, sex]


def _ipc(request_id: str) -> list[str]:
    """IPC (imaging procedure control, required in OMI): accession, requested procedure, the
    study instance UID the PACS is to use (2.25 + the order's id as a number), step."""
    try:
        study = f"2.25.{uuid.UUID(request_id).int}"
    except ValueError:
        digest = hashlib.sha256(request_id.encode()).hexdigest()[:32]
        study = f"2.25.{int(digest, 16)}"
    number = f"{_e(request_id)}^{HUB_PLACER}"
    return ["IPC", number, _e(request_id), study, _e(request_id)]


def _visit(order: Order) -> str:
    """PV1-19, the visit number the HIS gave (the Encounter's first identifier)."""
    identifiers = (order.encounter or {}).get("identifier") or [{}]
    return _e(identifiers[0].get("value", ""))


def _xcn(reference: Json, person: Json | None) -> str:
    """ORC-12 / OBR-16: the staff number and name of the requester."""
    number = ""
    name = reference.get("display", "")
    if person is not None:
        number = ((person.get("identifier") or [{}])[0]).get("value", "")
        name = name or ((person.get("name") or [{}])[0]).get("text", "")
    number = number or (reference.get("identifier") or {}).get("value", "")
    return f"{_e(number)}^{_e(name)}" if number or name else ""


def _patient_class(encounter: Json | None) -> str:
    if encounter is None:
        return "U"
    return _CLASS.get(str((encounter.get("class") or {}).get("code", "")), "U")


def _code(concept: Json) -> str:
    for coding in concept.get("coding", []):
        system = coding.get("system", "")
        label = _CODING_SYSTEMS.get(system, system.rstrip("/").rsplit("/", 1)[-1][:20] or "L")
        return f"{_e(coding.get('code', ''))}^{_e(coding.get('display', ''))}^{_e(label)}"
    return f"^{_e(concept.get('text', ''))}"


def _identifier(resource: Json, kind: str) -> str:
    for identifier in resource.get("identifier", []):
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding", [])}
        if kind in codes and identifier.get("value"):
            return f"{_e(identifier['value'])}^{_namespace(identifier.get('system', ''))}"
    return ""


def _type_code(identifier: Json) -> str:
    codings = (identifier.get("type") or {}).get("coding") or [{}]
    return _e(codings[0].get("code", ""))


def _namespace(system: str) -> str:
    """The assigning authority of an identifier: the last part of its system."""
    return _e(system.rstrip("/").rsplit(":", 1)[-1].rsplit("/", 1)[-1])[:20]


def _ts(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value.replace("-", "")[:8]
    if moment.tzinfo is None:
        return moment.strftime("%Y%m%d%H%M%S")
    return moment.astimezone(CHINA).strftime("%Y%m%d%H%M%S+0800")


def _e(text: str) -> str:
    return _D.escape_text(str(text))
