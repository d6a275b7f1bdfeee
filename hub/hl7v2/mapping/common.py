"""What every v2 mapping shares: ids from business keys, the Patient from PID and the Encounter
from PV1 (after the V2-to-FHIR IG's PID[Patient] and PV1[Encounter] maps).

Resource ids are derived from business identifiers (the patient's first identifier, the visit
number, order numbers, positions within a message), so a replay or a resend updates the same
resources and never duplicates them.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hub.hl7v2.datatypes import (
    address,
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


@dataclass(frozen=True)
class Merge:
    """ADT^A40: every reference to ``retired`` moves to ``survivor`` (both ``Patient/<id>``)."""

    survivor: str
    retired: str


@dataclass
class Mapped:
    """The resources one message produces, written in one store transaction."""

    resources: list[Json] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)

    def add(self, resource: Json) -> Json:
        self.resources.append(resource)
        return resource


class UnmappedMessageError(Exception):
    """No mapping for this message type: it stays archived, nothing is written."""


def reference(resource: Json) -> Json:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def instant(value: str) -> str:
    """FHIR instant needs seconds and a zone; v2 may give less."""
    return value if len(value) >= 25 else f"{value[:10]}T00:00:00+08:00"


def sender_of(message: Message) -> str:
    return message.sender[0]


def patient_identifiers(pid: Segment, field_number: int, sender: str) -> list[Json]:
    return [
        found
        for rep in range(1, len(pid.repetitions(field_number)) + 1)
        if (found := identifier(pid.components(field_number, rep), sender))
    ]


def patient(message: Message, mapped: Mapped, pid: Segment | None = None) -> Json:
    sender = sender_of(message)
    pid = pid or message.first("PID")
    if pid is None:
        raise ValueError("the message has no PID segment")
    identifiers = patient_identifiers(pid, 3, sender)
    if not identifiers:
        raise ValueError("PID-3 has no patient identifier")
    key = identifiers[0]
    resource: Json = {
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
        resource["name"] = names
    if gender := table("sex", sender).get(pid.value(8)):
        resource["gender"] = gender
    if birth := date_only(pid.value(7)):
        resource["birthDate"] = birth
    addresses = [
        a
        for rep in range(1, len(pid.repetitions(11)) + 1)
        if (a := address(pid.components(11, rep)))
    ]
    if addresses:
        resource["address"] = addresses
    telecom = [
        found
        for number, use in ((13, "home"), (14, "work"))
        for rep in range(1, len(pid.repetitions(number)) + 1)
        if (found := contact_point(pid.components(number, rep), use))
    ]
    if telecom:
        resource["telecom"] = telecom
    return mapped.add(resource)


_ENCOUNTER_STATUS = {"A03": "finished", "A11": "cancelled", "A05": "planned", "A13": "in-progress"}


def encounter(message: Message, mapped: Mapped, subject: Json, event: str = "") -> Json | None:
    pv1 = message.first("PV1")
    if pv1 is None:
        return None
    sender = sender_of(message)
    visit = pv1.value(19) or message.control_id
    act = table("patient_class", sender).get(pv1.value(2), "AMB")
    resource: Json = {
        "resourceType": "Encounter",
        "id": stable_id("enc", sender, visit),
        "identifier": [{"system": f"urn:jianhu:sid:visit:{sender.lower()}", "value": visit}],
        "status": _ENCOUNTER_STATUS.get(event, "finished" if pv1.value(45) else "in-progress"),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": act},
        "subject": reference(subject),
    }
    start, end = date_time(pv1.value(44)), date_time(pv1.value(45))
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    location = pv1.components(3)
    if any(location):
        resource["location"] = [{"location": {"display": " ".join(p for p in location[:3] if p)}}]
    return mapped.add(resource)
