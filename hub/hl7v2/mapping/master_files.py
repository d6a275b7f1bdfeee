"""Master files from the HIS: MFN^M02 staff (MFE + STF + PRA) to Practitioner and
PractitionerRole, MFN^M05 locations (MFE + LOC) to Location. They own these resources: what a
message only names (a doctor in PV1-7, a bed in PV1-3) is written when missing, a master file
replaces it. The ids are those the other messages derive (``staff``, ``visits``), so a doctor's
results and the staff file meet on one Practitioner.

MFE-1 says what happens to the record: MAD add, MUP update, MDC deactivate, MAC reactivate,
MDL delete (kept, inactive: results and stays still point to it)."""

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import contact_point, human_name
from hub.hl7v2.mapping.common import (
    STAFF_NUMBER,
    Mapped,
    coded,
    label,
    practitioner_resource,
    sender_of,
    stable_id,
)
from hub.hl7v2.mapping.visits import location_resource
from hub.hl7v2.message import Message, Segment

_INACTIVE = frozenset({"MDC", "MDL"})
_GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown"}
_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
# LOC-3 location type (table 0260) as a physical type
_LOCATION_TYPE = {"N": ("wa", "Ward"), "R": ("ro", "Room"), "B": ("bd", "Bed")}
_LOCATION_TYPE |= {"C": ("wa", "Ward"), "D": ("wa", "Ward"), "E": ("ro", "Room")}


def staff_file(message: Message, mapped: Mapped) -> None:
    """MFN^M02: a Practitioner per STF, a PractitionerRole per PRA (department, category)."""
    records = _records(message, ("STF", "PRA"))
    if not records:
        raise MappingError("the staff master file has no MFE/STF record")
    for mfe, segments in records:
        stf = segments.get("STF")
        if stf is None:
            raise MappingError(f"the MFE record {mfe.value(4)} has no STF segment")
        person = _practitioner(mfe, stf, sender_of(message))
        mapped.add(person)
        if (pra := segments.get("PRA")) is not None or stf.value(8):
            mapped.add(_role(person, stf, pra, sender_of(message)))


def location_file(message: Message, mapped: Mapped) -> None:
    """MFN^M05: a Location per LOC, keyed by its PL as PV1-3 keys a ward, room or bed."""
    records = _records(message, ("LOC",))
    if not records:
        raise MappingError("the location master file has no MFE/LOC record")
    sender = sender_of(message)
    for mfe, segments in records:
        loc = segments.get("LOC")
        if loc is None:
            raise MappingError(f"the MFE record {mfe.value(4)} has no LOC segment")
        pl = [*loc.components(1), *[""] * 3][:3]
        key = tuple(part for part in pl if part)
        if not key or key != tuple(pl[: len(key)]):
            raise MappingError("LOC-1 names no ward, room and bed (PL.1, .2, .3)")
        code, display = _LOCATION_TYPE.get(loc.value(3), ("wa", "Ward"))
        kind = {"coding": [{"system": _PHYSICAL_TYPE, "code": code, "display": display}]}
        name = loc.value(2) or key[-1]
        where: Json = {"display": name}
        if len(key) == 1:
            where["identifier"] = {
                "system": f"urn:jianhu:sid:ward:{sender.lower()}",
                "value": key[0],
            }
        above = None
        if len(key) > 1:
            above = {"id": stable_id("loc", sender.lower(), *key[:-1]), "name": key[-2]}
        place = location_resource(sender, key, where, kind, above)
        place["status"] = "inactive" if mfe.value(1) in _INACTIVE else "active"
        mapped.add(place)


def _records(message: Message, wanted: tuple[str, ...]) -> list[tuple[Segment, dict[str, Segment]]]:
    records: list[tuple[Segment, dict[str, Segment]]] = []
    for segment in message:
        if segment.name == "MFE":
            records.append((segment, {}))
        elif segment.name in wanted and records:
            records[-1][1].setdefault(segment.name, segment)
    return records


def _practitioner(mfe: Segment, stf: Segment, sender: str) -> Json:
    number = stf.value(1) or mfe.value(4)
    if not number:
        raise MappingError("STF-1 (and MFE-4) give no staff number")
    name = human_name(stf.components(3))
    person = practitioner_resource(STAFF_NUMBER, number, name)
    person["active"] = mfe.value(1) not in _INACTIVE and stf.value(7) != "I"
    others = [
        {"system": f"urn:jianhu:sid:staff-id:{label(sender)}", "value": value}
        for rep in range(1, len(stf.repetitions(2)) + 1)
        if (value := stf.value(2, 1, repetition=rep)) and value != number
    ]
    person["identifier"] += others
    if gender := _GENDER.get(stf.value(5)):
        person["gender"] = gender
    phones = [
        found
        for rep in range(1, len(stf.repetitions(10)) + 1)
        if (found := contact_point(stf.components(10, rep), "work"))
    ]
    if phones:
        person["telecom"] = phones
    return person


def _role(person: Json, stf: Segment, pra: Segment | None, sender: str) -> Json:
    """The person's place in the hospital: STF-8 department, PRA-3 category (医师, 护士...)."""
    role: Json = {
        "resourceType": "PractitionerRole",
        "id": stable_id("role", person["id"]),
        "active": person["active"],
        "practitioner": {"reference": f"Practitioner/{person['id']}"},
    }
    if department := coded(
        stf.components(8), sender, f"urn:jianhu:codesystem:local:{label(sender)}-dept"
    ):
        role["specialty"] = [department]
    if pra is not None and (category := coded(pra.components(3), sender, "")):
        role["code"] = [category]
    return role
