"""What each mapping cannot do without, checked cheaply when a message is taken in: the
segments it needs and a patient identifier in every PID. In original mode the sender reads
the accept ACK as "taken"; a message its mapping would refuse gets AE with an ERR naming what
is missing there, instead of AA followed by a dead letter nobody at the sender sees. The full
mapping runs later, in the normalizer; this is the part of it that costs a few lookups."""

from dataclasses import dataclass

from hub.hl7v2.datatypes import codes, table
from hub.hl7v2.mapping import MAPPINGS
from hub.hl7v2.mapping.common import patient_identifiers, sender_of
from hub.hl7v2.message import Message

# Per message code: each tuple is "one of these segments must be there".
NEEDED: dict[str, tuple[tuple[str, ...], ...]] = {
    "ADT": (("PID",),),
    "ORU": (("PID",), ("OBR",)),
    "MDM": (("PID",), ("TXA",)),
    "DFT": (("PID",), ("FT1",)),
    "ORM": (("PID",), ("ORC", "OBR")),
    "OML": (("PID",), ("ORC", "OBR")),
    "OMI": (("PID",), ("ORC", "OBR")),
    "RDE": (("PID",), ("ORC",), ("RXE",)),
    "SSU": (("SAC",),),
    "ORL": (("ORC",),),
    "RAS": (("PID",), ("ORC",), ("RXA",)),
    "SIU": (("PID",), ("SCH",)),
}
NEEDED_BY_EVENT: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("ADT", "A40"): (("MRG",),),  # which patient is merged away
    ("MFN", "M02"): (("MFE",), ("STF",)),  # the staff master file's records
    ("MFN", "M05"): (("MFE",), ("LOC",)),  # the location master file's records
}


@dataclass(frozen=True)
class Missing:
    """What the mapping would not find: a segment, or a field of one (field 0: the segment),
    or a code its sender's tables do not know (``unknown_code``)."""

    text: str
    segment: str
    field: int = 0
    sequence: int = 1
    unknown_code: bool = False


def missing(message: Message) -> Missing | None:
    """The first thing the message's mapping needs and does not find; None when it has all
    this check looks at (or the type has no mapping: the lab may still read it)."""
    code, event, _ = message.message_type
    if (code, event) not in MAPPINGS:
        return None
    for choices in NEEDED.get(code, ()) + NEEDED_BY_EVENT.get((code, event), ()):
        if not any(message.first(name) is not None for name in choices):
            wanted = " or ".join(choices)
            return Missing(f"the {code}^{event} message has no {wanted} segment", choices[0])
    sender = sender_of(message)
    # a result batch files each patient group; every other mapping reads the first PID only
    pids = message["PID"] if code == "ORU" else message["PID"][:1]
    for sequence, pid in enumerate(pids, start=1):
        if not patient_identifiers(pid, 3, sender):
            return Missing("PID-3 has no patient identifier", "PID", 3, sequence)
    return _unknown_code(message, sender) if sender in strict_senders() else None


def strict_senders() -> frozenset[str]:
    return codes("strict_senders")


def _unknown_code(message: Message, sender: str) -> Missing | None:
    """For a sender configured as strict (``strict_senders`` in the v2 maps): the first coded
    field whose code its tables do not know (``strict_fields``: PID-8 in ``sex`` ...). From any
    other sender such a code is kept as sent, in the sender's own code system."""
    for field_name, table_name in table("strict_fields", sender).items():
        segment_name, _, number = str(field_name).partition("-")
        known = table(str(table_name), sender)
        for sequence, segment in enumerate(message[segment_name], start=1):
            code = segment.value(int(number))
            if code and code not in known:
                text = f"{field_name} {code!r} is not in {sender}'s {table_name} table"
                return Missing(text, segment_name, int(number), sequence, unknown_code=True)
    return None
