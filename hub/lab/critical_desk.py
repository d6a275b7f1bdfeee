"""The critical-value desk: findings become alerts, one per Observation, acknowledged with a
read-back (复述) within the configured time, escalated level by level when they are not, closed
when a correction is no longer critical. Every step is an event for the big screen and an
AuditEvent; the acknowledgement is also a Communication (检验科 → 临床, payload the read-back)."""

import asyncio
import heapq
import itertools
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.base.logs import log_event
from hub.lab.critical_alerts import (
    Acknowledgement,
    AlertEvent,
    AlertState,
    AlertStateError,
    CriticalAlert,
    Staff,
    Step,
    Subscriber,
    UnknownAlertError,
)
from hub.lab.critical_check import Finding, check, code_name, shown_value
from hub.lab.critical_records import (
    audit_event,
    notification,
)
from hub.lab.critical_rules import AlertPolicy, CriticalRules, load_rules

log = logging.getLogger(__name__)


class CriticalValueDesk:
    """In memory: the store keeps the Observations, the audit trail keeps the AuditEvents and
    Communications, so after a restart the desk is rebuilt by replaying open results."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        rules: CriticalRules | None = None,
        policy: AlertPolicy | None = None,
    ) -> None:
        self.rules = rules or load_rules()
        self.policy = policy or self.rules.policy
        self._clock = clock
        self._alerts: dict[str, CriticalAlert] = {}
        self._live: dict[str, str] = {}  # Observation reference -> its alert not yet closed
        self._subscribers: list[Subscriber] = []
        # (when, order, alert id, level): the escalation steps still to come
        self._escalations: list[tuple[datetime, int, str, int]] = []
        self._order = itertools.count()
        self._steps = {step.level: step for step in self.policy.escalation}
        self.audit: list[Json] = []
        self.communications: list[Json] = []

    # -- reading

    def get(self, alert_id: str) -> CriticalAlert:
        try:
            return self._alerts[alert_id]
        except KeyError:
            raise UnknownAlertError(alert_id) from None

    def for_observation(self, observation_id: str) -> CriticalAlert | None:
        alert_id = self._live.get(f"Observation/{observation_id}")
        return self._alerts[alert_id] if alert_id else None

    def open_alerts(self) -> list[CriticalAlert]:
        """Not closed, oldest first: what the screen shows."""
        return sorted(
            (self._alerts[a] for a in self._live.values()), key=lambda a: (a.raised, a.id)
        )

    def next_due(self) -> datetime | None:
        """When ``escalate_due`` has something to do next, so the caller sleeps until then.
        Steps of alerts acknowledged, closed or already past that level are dropped here."""
        while self._escalations:
            when, _, alert_id, level = self._escalations[0]
            alert = self._alerts.get(alert_id)
            if alert is None or not alert.escalates or alert.level >= level:
                heapq.heappop(self._escalations)
                continue
            return when
        return None

    def drop(self, alert_id: str) -> CriticalAlert | None:
        """Removes an alert another process settled (the audit trail says so), unannounced."""
        alert = self._alerts.pop(alert_id, None)
        if alert is not None and self._live.get(alert.observation) == alert_id:
            del self._live[alert.observation]
        return alert

    def forget(self, settled_before: datetime) -> list[CriticalAlert]:
        """Drops alerts settled (acknowledged or closed) before ``settled_before``: their
        records are in the audit trail and the store, and a desk that ran for months would
        otherwise hold them all and sort them on every tick. A correction of a result
        forgotten this way is a new result: critical again, it raises a new alert."""
        gone = [
            alert
            for alert in self._alerts.values()
            if (settled := _settled_at(alert)) is not None and settled < settled_before
        ]
        for alert in gone:
            self.drop(alert.id)
        return gone

    # -- subscribing
    # -- subscribing

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    # -- steps

    async def receive(self, observation: Json, patient: Json | None = None) -> CriticalAlert | None:
        """A result arrived (new, or a new version of one seen before). Returns its alert, if
        it has one now; a duplicate or older version changes nothing."""
        now = self._now()
        reference = f"Observation/{observation['id']}"
        version = (observation.get("meta") or {}).get("versionId")
        live = self._alerts.get(self._live.get(reference, ""))
        if live is not None and _not_newer(version, live.version):
            return live
        withdrawn = observation.get("status") in self.rules.withdrawn_statuses
        findings = (
            ()
            if withdrawn
            else tuple(check(observation, patient, rules=self.rules, today=now.date()))
        )
        if not findings:
            if live is not None:
                reason = (
                    "结果已撤销"
                    if withdrawn
                    else f"更正结果不再危急：{code_name(observation)} {shown_value(observation)}"
                )
                await self._close(live, now, reason, None)
            return live
        if live is None:
            return await self._raise(observation, version, findings, now)
        if findings == live.findings and version == live.version:
            return live  # the same result delivered again
        live.findings, live.version = findings, version
        self._schedule(live)  # a unit mismatch found critical after all now escalates
        # still critical after a correction: the same alert, its state and deadlines kept
        await self._publish(live, Step.UPDATED, now, detail="更正后仍为危急值")
        return live

    def restore(
        self, alert_id: str, observation: Json, patient: Json | None, raised: datetime, level: int
    ) -> CriticalAlert | None:
        """An alert that was open when the hub stopped, from its audit trail: the same id,
        raise time, deadline and level, so escalation carries on where it was. Nothing is
        published: its steps are in the audit trail already. None when the result as stored
        now is no longer critical (a correction the queue will bring again)."""
        reference = f"Observation/{observation['id']}"
        if (live := self._live.get(reference)) is not None:
            return self._alerts[live]
        findings = tuple(check(observation, patient, rules=self.rules, today=raised.date()))
        if not findings:
            return None
        alert = CriticalAlert(
            id=alert_id,
            observation=reference,
            version=(observation.get("meta") or {}).get("versionId"),
            subject=(observation.get("subject") or {}).get("reference"),
            encounter=(observation.get("encounter") or {}).get("reference"),
            findings=findings,
            raised=raised,
            due=raised + self.policy.acknowledge_within,
            level=level,
        )
        self._alerts[alert.id] = alert
        self._live[reference] = alert.id
        self._schedule(alert)
        return alert

    async def acknowledge(
        self, alert_id: str, *, by: Staff, clinician: Staff, read_back: str
    ) -> CriticalAlert:
        """检验科 told ``clinician``, who read the value back (复述)."""
        alert = self.get(alert_id)
        if alert.state is not AlertState.OPEN:
            raise AlertStateError(f"alert {alert_id} is {alert.state.value}")
        if not read_back.strip():
            raise ValueError("an acknowledgement needs the clinician's read-back (复述)")
        if not (by.number and by.name and clinician.number and clinician.name):
            raise ValueError("staff number and name of both people are required")
        now = self._now()
        alert.acknowledgement = Acknowledgement(
            by, now, clinician, read_back.strip(), late=now > alert.due
        )
        alert.state = AlertState.ACKNOWLEDGED
        communication = notification(alert)
        self.communications.append(communication)
        await self._publish(
            alert, Step.ACKNOWLEDGED, now, agent=by, told=clinician, communication=communication
        )
        return alert

    async def dismiss(self, alert_id: str, *, by: Staff, reason: str) -> CriticalAlert:
        """A person closes an alert: a unit mismatch checked and found not critical."""
        alert = self.get(alert_id)
        if alert.state is AlertState.CLOSED:
            raise AlertStateError(f"alert {alert_id} is closed")
        if not reason.strip():
            raise ValueError("a dismissal needs a reason")
        await self._close(alert, self._now(), reason.strip(), by)
        return alert

    async def escalate_due(self) -> list[CriticalAlert]:
        """Every step now due on unacknowledged alerts, each its own event, in the order they
        fell due; a late call catches up level by level so no recipient is skipped. The steps
        wait on a heap, so a call looks only at what is due, not at every open alert."""
        now = self._now()
        escalated: list[CriticalAlert] = []
        while (due := self.next_due()) is not None and due <= now:
            _, _, alert_id, level = heapq.heappop(self._escalations)
            alert = self._alerts[alert_id]
            step = self._steps[level]
            alert.level = level
            await self._publish(
                alert,
                Step.ESCALATED,
                now,
                detail=f"未在时限内确认，升级至{step.level}级：通知{step.notify}",
                notify=step.notify,
            )
            if alert not in escalated:
                escalated.append(alert)
        return escalated

    def _schedule(self, alert: CriticalAlert) -> None:
        for step in self.policy.escalation:
            if step.level > alert.level:
                entry = (alert.raised + step.after, next(self._order), alert.id, step.level)
                heapq.heappush(self._escalations, entry)

    # -- internals

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the desk's clock must give timezone-aware times")
        return now.astimezone(HOSPITAL)

    async def _raise(
        self, observation: Json, version: str | None, findings: tuple[Finding, ...], now: datetime
    ) -> CriticalAlert:
        alert = CriticalAlert(
            id=uuid.uuid4().hex,
            observation=f"Observation/{observation['id']}",
            version=version,
            subject=(observation.get("subject") or {}).get("reference"),
            encounter=(observation.get("encounter") or {}).get("reference"),
            findings=findings,
            raised=now,
            due=now + self.policy.acknowledge_within,
        )
        self._alerts[alert.id] = alert
        self._live[alert.observation] = alert.id
        self._schedule(alert)
        await self._publish(alert, Step.RAISED, now)
        return alert

    async def _close(
        self, alert: CriticalAlert, now: datetime, reason: str, by: Staff | None
    ) -> None:
        alert.state, alert.closed, alert.close_reason = AlertState.CLOSED, now, reason
        self._live.pop(alert.observation, None)
        await self._publish(alert, Step.CLOSED, now, agent=by, detail=reason)

    async def _publish(
        self,
        alert: CriticalAlert,
        step: Step,
        now: datetime,
        *,
        agent: Staff | None = None,
        told: Staff | None = None,
        detail: str | None = None,
        communication: Json | None = None,
        notify: str | None = None,
    ) -> None:
        audit = audit_event(alert, step, now, agent, told, detail, communication)
        self.audit.append(audit)
        event = AlertEvent(step, now, alert.as_json(), audit, communication, notify)
        log_event(log, "critical_value", alert=alert.id, step=step.value, level=alert.level)
        for subscriber in list(self._subscribers):
            await _deliver(subscriber, event)


async def _deliver(subscriber: Subscriber, event: AlertEvent) -> None:
    """One screen that is slow or broken must not hold back the others or the desk."""
    if isinstance(subscriber, asyncio.Queue):
        try:
            subscriber.put_nowait(event)
        except asyncio.QueueFull:
            log_event(log, "critical_value_dropped", logging.WARNING, alert=event.alert["id"])
        return
    try:
        await subscriber(event)
    except Exception:  # a subscriber's own bug; the step itself has happened
        log.exception("critical value subscriber failed", extra={"alert": event.alert["id"]})


def _settled_at(alert: CriticalAlert) -> datetime | None:
    if alert.state is AlertState.CLOSED:
        return alert.closed
    if alert.state is AlertState.ACKNOWLEDGED and alert.acknowledgement is not None:
        return alert.acknowledgement.at
    return None


def _not_newer(version: str | None, current: str | None) -> bool:
    """Whether a delivery is the version already held or an older one (out-of-order replay)."""
    if version is None or current is None:
        return False
    if version.isdigit() and current.isdigit():
        return int(version) <= int(current)
    return version == current
