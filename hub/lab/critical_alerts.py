"""A critical-value alert and what happens to it: its states and steps, who acknowledged it
with which read-back (复述), and the events the desk emits."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.base.errors import PermanentError
from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.hl7v2.mapping.common import STAFF_NUMBER
from hub.lab.critical_check import Finding

# ---------------------------------------------------------------------------------------------
# The desk: alerts, acknowledgement, escalation


class AlertState(StrEnum):
    OPEN = "open"  # 待处理: flashing on the screen, escalating when overdue
    ACKNOWLEDGED = "acknowledged"  # 已确认: the clinician was told and read it back
    CLOSED = "closed"  # 已关闭: corrected, withdrawn, or dismissed by a person


class Step(StrEnum):
    RAISED = "raised"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    CLOSED = "closed"


STEP_LABELS = {
    Step.RAISED: "危急值报警",
    Step.UPDATED: "危急值更新",
    Step.ACKNOWLEDGED: "危急值确认（复述）",
    Step.ESCALATED: "危急值逾时升级",
    Step.CLOSED: "危急值关闭",
}
ACTIONS = {
    Step.RAISED: "C",
    Step.UPDATED: "U",
    Step.ACKNOWLEDGED: "U",
    Step.ESCALATED: "E",
    Step.CLOSED: "U",
}


@dataclass(frozen=True)
class Staff:
    """A member of staff by 工号 and name, as the HL7 mapping references staff."""

    number: str
    name: str

    def reference(self) -> Json:
        return {
            "type": "Practitioner",
            "identifier": {"system": STAFF_NUMBER, "value": self.number},
            "display": self.name,
        }


@dataclass(frozen=True)
class Acknowledgement:
    by: Staff  # who reported it (检验科) and took the read-back
    at: datetime
    clinician: Staff  # who was told (医生/护士)
    read_back: str  # 复述
    late: bool  # after the acknowledgement deadline


@dataclass
class CriticalAlert:
    id: str
    observation: str  # "Observation/<id>"
    version: str | None
    subject: str | None  # "Patient/<id>": the screen resolves name and bed, the desk keeps none
    encounter: str | None
    findings: tuple[Finding, ...]
    raised: datetime
    due: datetime
    state: AlertState = AlertState.OPEN
    level: int = 0  # 0 until the first escalation
    acknowledgement: Acknowledgement | None = None
    closed: datetime | None = None
    close_reason: str | None = None

    @property
    def text(self) -> str:
        return "；".join(f.text for f in self.findings)

    @property
    def critical(self) -> bool:
        return any(f.critical for f in self.findings)

    @property
    def escalates(self) -> bool:
        """Unacknowledged and critical. A unit mismatch alone is the lab's to check: it stays
        on the screen until a person dismisses it, without calling the 科主任 or 医务科."""
        return self.state is AlertState.OPEN and self.critical

    def as_json(self) -> Json:
        ack = self.acknowledgement
        return {
            "id": self.id,
            "observation": self.observation,
            "version": self.version,
            "subject": self.subject,
            "encounter": self.encounter,
            "state": self.state.value,
            "level": self.level,
            "critical": self.critical,
            "findings": [f.as_json() for f in self.findings],
            "text": self.text,
            "raised": local_time(self.raised),
            "due": local_time(self.due),
            "acknowledgement": None
            if ack is None
            else {
                "by": {"number": ack.by.number, "name": ack.by.name},
                "at": local_time(ack.at),
                "clinician": {"number": ack.clinician.number, "name": ack.clinician.name},
                "read_back": ack.read_back,
                "late": ack.late,
            },
            "closed": local_time(self.closed) if self.closed else None,
            "close_reason": self.close_reason,
        }


@dataclass(frozen=True)
class AlertEvent:
    """One step of one alert, for the screen (``alert`` is a snapshot) and the audit trail."""

    step: Step
    at: datetime
    alert: Json
    audit: Json  # FHIR R4 AuditEvent
    communication: Json | None = None  # FHIR R4 Communication, on acknowledgement
    notify: str | None = None  # on escalation: who is called now


Subscriber = Callable[[AlertEvent], Awaitable[None]] | asyncio.Queue[AlertEvent]


class UnknownAlertError(PermanentError, KeyError):
    pass


class AlertStateError(PermanentError):
    """The step does not apply to the alert as it stands (acknowledging a closed alert)."""


def local_time(moment: datetime) -> str:
    return moment.astimezone(HOSPITAL).isoformat(timespec="seconds")
