"""ADT^A40 patient merge. The V2-to-FHIR IG leaves the merge to the implementer; as in the
Microsoft converter, the surviving Patient (PID) gets ``link: replaces`` to the retired one
(MRG-1), and the retired one ``active: false`` with ``link: replaced-by``, so a search by an
old number still finds the record and points on. Moving every reference from the retired
Patient to the survivor needs the store: the mapping asks for it with a ``Merge``."""

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import human_name
from hub.hl7v2.mapping.common import (
    Mapped,
    Merge,
    WriteMode,
    patient,
    patient_identifiers,
    sender_of,
    stable_id,
)
from hub.hl7v2.message import Message


def merge(message: Message, mapped: Mapped) -> None:
    survivor = patient(message, mapped)
    sender = sender_of(message)
    mrg = message.first("MRG")
    if mrg is None:
        raise MappingError("ADT^A40 has no MRG segment: which patient is merged is unknown")
    identifiers = patient_identifiers(mrg, 1, sender)
    if not identifiers:
        raise MappingError("MRG-1 has no prior patient identifier")
    key = identifiers[0]
    retired_id = stable_id("pat", key["system"], key["value"])
    if retired_id == survivor["id"]:
        raise MappingError("MRG-1 names the surviving patient itself")
    retired: Json = {
        "resourceType": "Patient",
        "id": retired_id,
        "identifier": identifiers,
        "active": False,
        "link": [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}],
    }
    if name := human_name(mrg.components(7)):
        retired["name"] = [name]
    survivor["link"] = [{"other": {"reference": f"Patient/{retired_id}"}, "type": "replaces"}]
    # the retired record keeps what it had (names, address); only active and link change
    mapped.add(retired, WriteMode.MERGE)
    mapped.merges.append(Merge(f"Patient/{survivor['id']}", f"Patient/{retired_id}"))
