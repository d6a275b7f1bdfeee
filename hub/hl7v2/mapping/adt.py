"""ADT: Patient from PID, Encounter from PV1."""

from hub.hl7v2.mapping.common import Mapped, encounter, patient
from hub.hl7v2.message import Message


def admission(message: Message, mapped: Mapped) -> None:
    """A01/A02/A03/A04/A05/A06/A08/A11/A13."""
    subject = patient(message, mapped)
    encounter(message, mapped, subject, message.message_type[1])
