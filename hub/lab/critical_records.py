"""The FHIR records of the critical-value desk: the Communication that tells a clinician (its
payload the read-back) and the AuditEvent of every step."""

import uuid
from datetime import datetime

from hub.base.json import Json
from hub.lab.critical_alerts import (
    ACTIONS,
    STEP_LABELS,
    AlertStateError,
    CriticalAlert,
    Staff,
    Step,
    local_time,
)

AUDIT_TYPE = "urn:jianhu:codesystem:audit-event-type"
ALERT_STEP = "urn:jianhu:codesystem:critical-value-step"
DESK = "集成平台危急值服务"


# ---------------------------------------------------------------------------------------------
# FHIR records


def notification(alert: CriticalAlert) -> Json:
    """The notification 检验科 → clinician as a completed R4 Communication; the read-back is the
    second payload, next to what was reported."""
    ack = alert.acknowledgement
    if ack is None:
        raise AlertStateError("only an acknowledged alert has a notification")
    communication: Json = {
        "resourceType": "Communication",
        "id": f"crit-{alert.id}",
        "status": "completed",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/communication-category",
                        "code": "alert",
                        "display": "Alert",
                    }
                ],
                "text": "危急值通知",
            }
        ],
        "priority": "stat",
        "medium": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                        "code": "PHONE",
                        "display": "telephone",
                    }
                ]
            }
        ],
        "about": [{"reference": alert.observation}],
        "sent": local_time(ack.at),
        "received": local_time(ack.at),
        "sender": ack.by.reference(),
        "recipient": [ack.clinician.reference()],
        "payload": [{"contentString": alert.text}, {"contentString": f"复述：{ack.read_back}"}],
    }
    if alert.subject:
        communication["subject"] = {"reference": alert.subject}
    if alert.encounter:
        communication["encounter"] = {"reference": alert.encounter}
    return communication


def audit_event(
    alert: CriticalAlert,
    step: Step,
    at: datetime,
    agent: Staff | None = None,
    told: Staff | None = None,
    detail: str | None = None,
    communication: Json | None = None,
) -> Json:
    """One R4 AuditEvent per step: who (a person, or the desk itself), what, when."""
    agents: list[Json] = [
        {"who": agent.reference(), "name": agent.name, "requestor": True}
        if agent is not None
        else {"who": {"display": DESK}, "requestor": False}
    ]
    if told is not None:
        agents.append(
            {
                "who": told.reference(),
                "role": [{"text": "接获危急值的临床人员"}],
                "requestor": False,
            }
        )
    details = [
        {"type": "alert", "valueString": alert.id},
        {"type": "level", "valueString": str(alert.level)},
    ]
    if alert.version:  # which version of the result raised it: ``jianhu trace`` matches it
        details.append({"type": "version", "valueString": alert.version})
    if detail:
        details.append({"type": "detail", "valueString": detail})
    entities: list[Json] = [
        {
            "what": {"reference": alert.observation},
            "type": _entity_type("2", "System Object"),
            "detail": details,
        }
    ]
    if alert.subject:
        entities.append({"what": {"reference": alert.subject}, "type": _entity_type("1", "Person")})
    if communication is not None:
        entities.append(
            {
                "what": {"reference": f"Communication/{communication['id']}"},
                "type": _entity_type("2", "System Object"),
            }
        )
    return {
        "resourceType": "AuditEvent",
        "id": uuid.uuid4().hex,
        "type": {"system": AUDIT_TYPE, "code": "critical-value", "display": "危急值"},
        "subtype": [{"system": ALERT_STEP, "code": step.value, "display": STEP_LABELS[step]}],
        "action": ACTIONS[step],
        "recorded": local_time(at),
        "outcome": "0",
        "outcomeDesc": STEP_LABELS[step],
        "agent": agents,
        "source": {
            "observer": {"display": DESK},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
        "entity": entities,
    }


def _entity_type(code: str, display: str) -> Json:
    return {
        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
        "code": code,
        "display": display,
    }
