"""What every v2 mapping shares: ids from business keys, the Patient from PID (after the
V2-to-FHIR IG's PID[Patient] map), the staff a message names; the Encounter is ``visits.py``'s.

Resource ids are derived from business identifiers (the patient's first identifier, the visit
number, order numbers, positions within a message), so a replay or a resend updates the same
resources and never duplicates them.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from hub.base.errors import MappingError, PermanentError
from hub.base.json import Json
from hub.hl7v2.datatypes import (
    BIRTH_PLACE,
    address,
    address_kind,
    codeable,
    contact_point,
    date_only,
    human_name,
    identifier,
    table,
)
from hub.hl7v2.message import Message, Segment

STAFF_NUMBER = "urn:jianhu:sid:staff"  # 工号, the hospital's staff number
V3_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
V3_NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
ETHNIC_GROUP = "urn:jianhu:structuredefinition:ethnic-group"  # 民族, GB 3304
NATIONALITY = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
BIRTH_PLACE_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"  # identifier types PLAC, FILL, PGN


def stable_id(kind: str, *parts: str) -> str:
    """A FHIR id from business keys: the same keys give the same id."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
    return f"{kind}-{digest}"


@dataclass(frozen=True)
class Merge:
    """ADT^A40: every reference to ``retired`` moves to ``survivor`` (both ``Patient/<id>``)."""

    survivor: str
    retired: str


class WriteMode(StrEnum):
    """How a mapped resource meets what the store already holds."""

    REPLACE = "replace"  # this message owns the resource: its content is the new version
    MERGE = "merge"  # a partial update: its top-level elements replace, the others stay
    IF_ABSENT = "if-absent"  # context only (the Patient of a lab result): written when missing


@dataclass
class Mapped:
    """The resources one message produces, written in one store transaction."""

    resources: list[Json] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    modes: dict[str, WriteMode] = field(default_factory=dict)  # "Type/id" -> not REPLACE

    def add(self, resource: Json, mode: WriteMode = WriteMode.REPLACE) -> Json:
        self.resources.append(resource)
        if mode is not WriteMode.REPLACE:
            self.modes[f"{resource['resourceType']}/{resource['id']}"] = mode
        return resource

    def mode(self, resource: Json) -> WriteMode:
        return self.modes.get(f"{resource['resourceType']}/{resource['id']}", WriteMode.REPLACE)

    def context(self, resource: Json) -> Json:
        """A resource this message only names (a doctor, a bed, an analyser): written when the
        store has none, once however often the message names it."""
        key = f"{resource['resourceType']}/{resource['id']}"
        if key in self.modes:
            return next(r for r in self.resources if f"{r['resourceType']}/{r['id']}" == key)
        return self.add(resource, WriteMode.IF_ABSENT)


def context_mode(message: Message) -> WriteMode:
    """Patient and Encounter belong to the registration feed (ADT). Every other message carries
    them as context, often thinner (a lab's PID has no address): it may create them, so its
    references resolve, but never overwrites what ADT stored."""
    return WriteMode.REPLACE if message.message_type[0] == "ADT" else WriteMode.IF_ABSENT


class UnmappedMessageError(PermanentError):
    """No mapping for this message type: it stays archived, nothing is written."""


def reference(resource: Json) -> Json:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def instant(value: str) -> str:
    """FHIR instant needs seconds and a zone; v2 may give less."""
    return value if len(value) >= 25 else f"{value[:10]}T00:00:00+08:00"


def sender_of(message: Message) -> str:
    return message.sender[0]


def each(segment: Segment, number: int, convert: Callable[[list[str]], Json | None]) -> list[Json]:
    """Every repetition of a field, converted; repetitions that give nothing are left out."""
    return [
        found
        for rep in range(1, len(segment.repetitions(number)) + 1)
        if (found := convert(segment.components(number, rep)))
    ]


def person_details(segment: Segment, addresses: int, home: int, work: int) -> Json:
    """Addresses and phones of a person segment (PID-11/13/14, NK1-4/5/6), where present; a
    birth place (XAD-7 BR or N) is no address the person has (``birth_place``)."""
    found: Json = {}
    sent = _addresses(segment, addresses)
    if lived := [a for kind, a in sent if kind not in BIRTH_PLACE]:
        found["address"] = lived
    telecom = [
        *each(segment, home, lambda parts: contact_point(parts, "home")),
        *each(segment, work, lambda parts: contact_point(parts, "work")),
    ]
    if telecom:
        found["telecom"] = telecom
    return found


def birth_place(segment: Segment, addresses: int) -> Json | None:
    """The patient-birthPlace extension of a birth address (XAD-7 BR or N): 出生地."""
    born = [a for kind, a in _addresses(segment, addresses) if kind in BIRTH_PLACE]
    return {"url": BIRTH_PLACE_URL, "valueAddress": born[0]} if born else None


def _addresses(segment: Segment, number: int) -> list[tuple[str, Json]]:
    found = []
    for rep in range(1, len(segment.repetitions(number)) + 1):
        xad = segment.components(number, rep)
        if (place := address(xad)) is not None:
            found.append((address_kind(xad), place))
    return found


def patient_identifiers(pid: Segment, field_number: int, sender: str) -> list[Json]:
    return each(pid, field_number, lambda parts: identifier(parts, sender))


def patient(message: Message, mapped: Mapped, pid: Segment | None = None) -> Json:
    sender = sender_of(message)
    pid = pid or message.first("PID")
    if pid is None:
        raise MappingError("the message has no PID segment")
    identifiers = patient_identifiers(pid, 3, sender)
    if not identifiers:
        raise MappingError("PID-3 has no patient identifier")
    key = identifiers[0]
    resource: Json = {
        "resourceType": "Patient",
        "id": stable_id("pat", key["system"], key["value"]),
        "identifier": identifiers,
    }
    if names := each(pid, 5, human_name):
        resource["name"] = names
    if gender := table("sex", sender).get(pid.value(8)):
        resource["gender"] = gender
    if birth := date_only(pid.value(7)):
        resource["birthDate"] = birth
    resource.update(person_details(pid, 11, 13, 14))
    resource.update(_origins(pid, sender))
    if born := birth_place(pid, 11):
        resource["extension"] = [born, *resource.get("extension", [])]
    return mapped.add(resource, context_mode(message))


def _origins(pid: Segment, sender: str) -> Json:
    """PID-16 marital status (GB/T 2261.2, with its v3-MaritalStatus), PID-22 ethnic group
    (GB 3304, an extension: FHIR has no element for it) and PID-26 nationality (GB/T 2659, the
    patient-nationality extension): what the front page's 婚姻, 民族 and 国籍 are read from."""
    found: Json = {}
    sent_marital = pid.components(16)
    # without CWE.3, a letter is HL7 table 0002 (M, S, W, D), a number GB/T 2261.2 (10, 20)
    alphabetic = bool(sent_marital) and sent_marital[0].isascii() and sent_marital[0].isalpha()
    default = "HL70002" if alphabetic else field_system("PID-16", sender)
    if marital := coded(sent_marital, sender, default):
        sent = (marital.get("coding") or [{}])[0].get("code", "")
        if v3 := table("marital_status", sender).get(sent):
            system = V3_NULL_FLAVOR if v3 == "UNK" else V3_MARITAL  # UNK is a null flavour
            marital.setdefault("coding", []).append({"system": system, "code": v3})
        found["maritalStatus"] = marital
    extensions: list[Json] = []
    if ethnic := coded(pid.components(22), sender, field_system("PID-22", sender)):
        extensions.append({"url": ETHNIC_GROUP, "valueCodeableConcept": ethnic})
    if nation := coded(pid.components(26), sender, field_system("PID-26", sender)):
        code: Json = {"url": "code", "valueCodeableConcept": nation}
        extensions.append({"url": NATIONALITY, "extension": [code]})
    if extensions:
        found["extension"] = extensions
    return found


def field_system(field_name: str, sender: str) -> str:
    """The coding system a field's codes come from when the sender leaves CWE.3 empty (HIS
    dictionaries mostly do): table ``field_coding_system``, e.g. PV1-36 -> CV06.00.226."""
    return str(table("field_coding_system", sender).get(field_name, ""))


def coded(components: list[str], sender: str, default_system: str) -> Json | None:
    """CWE/CE to CodeableConcept, with ``default_system`` standing in for an empty CWE.3. A
    value with text but no code (``^海鲜``, common for free-text allergens) keeps the text."""
    parts = [*components, "", "", ""][: max(len(components), 3)]
    if parts[0] and not parts[2]:
        parts[2] = default_system
    concept = codeable(parts, sender)
    if concept is None and parts[1]:
        return {"text": parts[1]}
    return concept


def display_name(xcn: list[str]) -> str:
    """XCN (id, family, given, ...) to the name shown for a doctor: Chinese reads family first."""
    name = human_name(xcn[1:])
    return str(name["text"]) if name else ""


def entity_key(components: list[str], default_namespace: str | None) -> tuple[str, str] | None:
    """(namespace, number) of an EI; None when the number or the namespace is unknown."""
    number = components[0] if components else ""
    namespace = (components[1] if len(components) > 1 else "") or default_namespace
    return (namespace, number) if number and namespace else None


def label(namespace: str) -> str:
    """An assigning application as it appears in an identifier system URN."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", namespace).lower()


def staff(components: list[str], mapped: Mapped | None = None) -> Json | None:
    """An XCN as a Reference carrying the staff number and name. A number without an assigning
    authority (XCN-9) is the hospital's 工号 (staff number): the HIS, the EMR and the LIS all
    send 1301 for 俞海峰. Given ``mapped``, a numbered person is also a Practitioner in the
    store, written when missing (the staff master file, MFN^M02, owns its content), and the
    Reference points to it."""
    number = components[0] if components else ""
    name = human_name(components[1:3])
    if not number and name is None:
        return None
    found: Json = {"type": "Practitioner"}
    if number:
        authority = components[8].split("&")[0] if len(components) > 8 else ""
        system = f"{STAFF_NUMBER}:{label(authority)}" if authority else STAFF_NUMBER
        found["identifier"] = {"system": system, "value": number}
        if mapped is not None:
            person = mapped.context(practitioner_resource(system, number, name))
            found = {"reference": f"Practitioner/{person['id']}", **found}
    if name is not None:
        found["display"] = name["text"]
    return found


def practitioner_resource(system: str, number: str, name: Json | None) -> Json:
    """The Practitioner of a staff number: its id follows from the number, so every message
    and the staff master file meet on one resource."""
    person: Json = {
        "resourceType": "Practitioner",
        "id": stable_id("prac", system, number),
        "identifier": [{"system": system, "value": number}],
    }
    if name is not None:
        person["name"] = [name]
    return person
