"""HL7 v2 to FHIR R4, after the HL7 V2-to-FHIR IG: one module per message family, one entry per
message type and event in ``MAPPINGS``. A mapping is a pure function of the message; the
normalizer writes what it returns in one store transaction."""

from collections.abc import Callable

from hub.hl7v2.mapping import (
    adt,
    charges,
    documents,
    lab_status,
    master_files,
    merge,
    orders,
    pharmacy,
    results,
    scheduling,
)
from hub.hl7v2.mapping.common import Mapped, Merge, UnmappedMessageError, WriteMode
from hub.hl7v2.message import Message

Mapping = Callable[[Message, Mapped], None]

MAPPINGS: dict[tuple[str, str], Mapping] = {
    **{
        ("ADT", event): adt.admission
        for event in ("A01", "A02", "A03", "A04", "A05", "A06", "A08", "A11", "A13")
    },
    ("ADT", "A28"): adt.person,
    ("ADT", "A31"): adt.person,
    ("ADT", "A40"): merge.merge,
    ("MFN", "M02"): master_files.staff_file,
    ("MFN", "M05"): master_files.location_file,
    ("ORU", "R01"): results.results,
    ("MDM", "T02"): documents.documents,
    ("DFT", "P03"): charges.charges,
    ("ORM", "O01"): orders.orders,
    ("OML", "O21"): orders.orders,
    ("OMI", "O23"): orders.orders,
    ("RDE", "O11"): pharmacy.prescriptions,
    ("SSU", "U03"): lab_status.container_status,
    ("ORL", "O22"): lab_status.order_status,
    ("RAS", "O17"): pharmacy.administrations,
    **{("SIU", event): scheduling.appointment for event in ("S12", "S13", "S14", "S15")},
}


def normalize(message: Message) -> Mapped:
    code, event, _ = message.message_type
    mapping = MAPPINGS.get((code, event))
    if mapping is None:
        raise UnmappedMessageError(f"{code}^{event} has no FHIR mapping yet")
    mapped = Mapped()
    mapping(message, mapped)
    return mapped


__all__ = [
    "MAPPINGS",
    "Mapped",
    "Merge",
    "UnmappedMessageError",
    "WriteMode",
    "normalize",
]
