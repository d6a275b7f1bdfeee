"""ADT: Patient from PID, Encounter from PV1 (A28/A31: the person only), and from the segments
around them a RelatedPerson per NK1, an AllergyIntolerance per AL1, a Condition per DG1 (listed
in Encounter.diagnosis) and a Coverage per IN1 with its payer Organization (see ``clinical``)."""

from hub.hl7v2.mapping.clinical import allergies, coverages, diagnoses, related_persons
from hub.hl7v2.mapping.common import Mapped, patient
from hub.hl7v2.mapping.visits import encounter
from hub.hl7v2.message import Message


def person(message: Message, mapped: Mapped) -> None:
    """A28 add and A31 update person information: the patient (with the people, allergies and
    insurance around them), no visit (their PV1, if any, says "not applicable")."""
    subject = patient(message, mapped)
    related_persons(message, mapped, subject)
    allergies(message, mapped, subject)
    coverages(message, mapped, subject)


def admission(message: Message, mapped: Mapped) -> None:
    """A01/A02/A03/A04/A05/A06/A08/A11/A13."""
    subject = patient(message, mapped)
    visit = encounter(message, mapped, subject, message.message_type[1])
    related_persons(message, mapped, subject)
    allergies(message, mapped, subject)
    diagnoses(message, mapped, subject, visit)
    coverages(message, mapped, subject)
