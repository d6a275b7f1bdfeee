"""Turnaround-time (TAT, 检验周转时间) alerts for the lab screen.

Rules (``tat_rules``) each watch one span of the lifecycle, e.g. collected -> received within
30 minutes. The ``AlertEngine`` keeps the tubes in flight in
memory with one heap of deadlines: an event re-evaluates only its own tube, and ``tick``
pops only the deadlines that have passed, so the cost of an event does not grow with the
number of tubes in flight. The clock is injected: tests and the benchmark advance it by hand.
"""

import asyncio
import contextlib
import heapq
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from hub.base.errors import PermanentError
from hub.base.hospital_time import HOSPITAL
from hub.lab.lifecycle import LifecycleEvent, Priority, Source, SpecimenTrack, Stage
from hub.lab.tat_rules import TatRule, TatRules, tat_rules

Clock = Callable[[], datetime]


# --- alerts ---


class ChangeKind(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    by: str  # the named person (姓名 or 工号) who took charge
    at: datetime
    note: str = ""


@dataclass(slots=True)
class Alert:
    id: str  # "<rule>/<specimen>": a tube never moves back, so a rule fires once per tube
    rule: str
    label: str
    specimen: str
    barcode: str | None
    department: str | None
    test_group: str | None
    priority: Priority
    source: Source
    stage: Stage | None  # where the tube stood when the alert was raised
    due: datetime
    raised_at: datetime
    acknowledgement: Acknowledgement | None = None
    cleared_at: datetime | None = None
    cleared_because: str | None = None  # "stage" reached, "cancelled", "rule-off"


@dataclass(frozen=True, slots=True)
class AlertChange:
    kind: ChangeKind
    alert: Alert  # a copy as it stood at the change
    at: datetime


class AlertError(PermanentError):
    """An acknowledgement the engine cannot take (unknown alert, no name, taken already)."""


@dataclass(slots=True)
class _InFlight:
    """What the engine keeps per tube besides the track: its scheduled deadlines and alerts."""

    track: SpecimenTrack
    deadlines: dict[str, datetime] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)


class AlertEngine:
    """Tubes in flight, their deadlines and their open alerts. Not thread-safe: drive it from
    one event loop (feeds call ``apply``, a timer calls ``tick``)."""

    def __init__(
        self,
        rules: TatRules | None = None,
        now: Clock | None = None,
        completed_capacity: int = 200_000,
        queue_size: int = 10_000,
    ) -> None:
        self.rules = rules or tat_rules()
        self._now = now or (lambda: datetime.now(HOSPITAL))
        self._flight: dict[str, _InFlight] = {}
        self._by_request: dict[str, set[str]] = {}
        self._heap: list[tuple[float, int, str, str]] = []
        self._seq = 0
        self._open: dict[str, Alert] = {}
        self._stages: Counter[Stage] = Counter()
        self._limits: dict[
            tuple[str | None, Priority, Source], list[tuple[TatRule, timedelta]]
        ] = {}
        # finished tubes, newest last, for statistics and for late events (a print, a
        # correction) that must not bring a tube back in flight
        self.completed: OrderedDict[str, SpecimenTrack] = OrderedDict()
        self._withdrawn: OrderedDict[str, None] = OrderedDict()  # cancelled tubes, newest last
        self._completed_capacity = completed_capacity
        self._queue_size = queue_size
        self._queues: list[asyncio.Queue[AlertChange]] = []
        self._callbacks: list[Callable[[AlertChange], None]] = []
        self.dropped_changes = 0
        self.unmatched_events = 0

    # --- feeding ---

    def apply(self, event: LifecycleEvent) -> None:
        now = self._now()
        for key in self._keys(event):
            self._apply_to(key, event, now)

    def apply_all(self, events: Iterable[LifecycleEvent]) -> None:
        for event in events:
            self.apply(event)

    def _keys(self, event: LifecycleEvent) -> list[str]:
        if event.specimen is not None:
            return [event.specimen]
        found = sorted(self._by_request.get(event.request or "", ()))
        if not found:
            self.unmatched_events += 1  # an order whose tube the engine has not seen
        return found

    def _apply_to(self, key: str, event: LifecycleEvent, now: datetime) -> None:
        flight = self._flight.get(key)
        if flight is None:
            if (done := self.completed.get(key)) is not None:
                done.apply(event)  # a print or a correction after the report
                return
            if event.cancelled or key in self._withdrawn:
                return  # a late event of a withdrawn tube (out of order, a replay) changes nothing
            flight = self._flight[key] = _InFlight(SpecimenTrack(key))
        track = flight.track
        before = track.stage
        track.apply(event)
        self._recount(before, track.stage)
        for request in track.requests:
            self._by_request.setdefault(request, set()).add(key)
        if track.cancelled:
            self._withdraw(flight, now)
            return
        self._evaluate(flight, now)
        if track.reached(self.rules.complete_at) and not flight.deadlines and not flight.alerts:
            self._complete(flight)

    def _recount(self, before: Stage | None, after: Stage | None) -> None:
        if before == after:
            return
        if before is not None:
            self._stages[before] -= 1
        if after is not None:
            self._stages[after] += 1

    def _limits_for(self, track: SpecimenTrack) -> list[tuple[TatRule, timedelta]]:
        key = (track.test_group, track.priority, track.source)
        found = self._limits.get(key)
        if found is None:
            found = self._limits[key] = [
                (rule, limit)
                for rule in self.rules.rules
                if (limit := rule.limit_for(*key)) is not None
            ]
        return found

    def _evaluate(self, flight: _InFlight, now: datetime) -> None:
        track = flight.track
        applicable = self._limits_for(track)
        live = {rule.id for rule, _ in applicable}
        for rule_id in [r for r in flight.deadlines if r not in live]:
            del flight.deadlines[rule_id]
        for rule_id in [r for r in flight.alerts if r not in live]:
            self._clear(flight, rule_id, now, "rule-off")  # the tube's priority changed
        for rule, limit in applicable:
            self._evaluate_rule(flight, rule, limit, now)

    def _evaluate_rule(
        self, flight: _InFlight, rule: TatRule, limit: timedelta, now: datetime
    ) -> None:
        track = flight.track
        if track.reached(rule.target):
            flight.deadlines.pop(rule.id, None)
            if rule.id in flight.alerts:
                self._clear(flight, rule.id, now, "stage")
            return
        start = track.started(rule.start, rule.target)
        if start is None or rule.id in flight.alerts:
            return
        due = start + limit
        if due <= now:  # the event itself came late: the deadline has passed already
            flight.deadlines.pop(rule.id, None)
            self._raise(flight, rule, due, now)
        elif flight.deadlines.get(rule.id) != due:
            flight.deadlines[rule.id] = due
            self._seq += 1
            heapq.heappush(self._heap, (due.timestamp(), self._seq, track.specimen, rule.id))

    def tick(self, now: datetime | None = None) -> int:
        """Raise the alerts whose deadline has passed by ``now``; returns how many. Heap
        entries left behind by a deadline that moved or a stage that arrived are skipped."""
        now = now or self._now()
        limit = now.timestamp()
        raised = 0
        while self._heap and self._heap[0][0] <= limit:
            stamp, _, key, rule_id = heapq.heappop(self._heap)
            flight = self._flight.get(key)
            due = flight.deadlines.get(rule_id) if flight else None
            if flight is None or due is None or due.timestamp() != stamp:
                continue
            del flight.deadlines[rule_id]
            self._raise(flight, self.rules.get(rule_id), due, now)
            raised += 1
        return raised

    # --- alerts ---

    def _raise(self, flight: _InFlight, rule: TatRule, due: datetime, now: datetime) -> None:
        track = flight.track
        alert = Alert(
            id=f"{rule.id}/{track.specimen}",
            rule=rule.id,
            label=rule.label,
            specimen=track.specimen,
            barcode=track.barcode,
            department=track.department,
            test_group=track.test_group,
            priority=track.priority,
            source=track.source,
            stage=track.stage,
            due=due,
            raised_at=now,
        )
        flight.alerts[rule.id] = alert
        self._open[alert.id] = alert
        self._emit(ChangeKind.RAISED, alert, now)

    def _clear(self, flight: _InFlight, rule_id: str, now: datetime, because: str) -> None:
        alert = flight.alerts.pop(rule_id)
        del self._open[alert.id]
        alert.cleared_at, alert.cleared_because = now, because
        self._emit(ChangeKind.CLEARED, alert, now)

    def acknowledge(
        self, alert_id: str, by: str, note: str = "", at: datetime | None = None
    ) -> Alert:
        """A named person takes charge of an open alert; it stays open until the stage
        arrives, so the screen shows it as acknowledged rather than hiding it."""
        alert = self._open.get(alert_id)
        if alert is None:
            raise AlertError("no open alert with this id")
        if not by.strip():
            raise AlertError("an acknowledgement names who took charge")
        if alert.acknowledgement is not None:
            raise AlertError("the alert was acknowledged already")
        when = at or self._now()
        alert.acknowledgement = Acknowledgement(by.strip(), when, note)
        self._emit(ChangeKind.ACKNOWLEDGED, alert, when)
        return alert

    def _withdraw(self, flight: _InFlight, now: datetime) -> None:
        for rule_id in list(flight.alerts):
            self._clear(flight, rule_id, now, "cancelled")
        self._forget(flight)
        self._withdrawn[flight.track.specimen] = None
        while len(self._withdrawn) > self._completed_capacity:
            self._withdrawn.popitem(last=False)

    def _complete(self, flight: _InFlight) -> None:
        self._forget(flight)
        track = flight.track
        self.completed[track.specimen] = track
        while len(self.completed) > self._completed_capacity:
            self.completed.popitem(last=False)

    def _forget(self, flight: _InFlight) -> None:
        track = flight.track
        del self._flight[track.specimen]
        self._recount(track.stage, None)
        for request in track.requests:
            tubes = self._by_request.get(request)
            if tubes is not None:
                tubes.discard(track.specimen)
                if not tubes:
                    del self._by_request[request]

    # --- what the screen reads ---

    def alerts(self) -> list[Alert]:
        """Open alerts, oldest deadline first."""
        return sorted(self._open.values(), key=lambda a: a.due)

    def track(self, specimen: str) -> SpecimenTrack | None:
        flight = self._flight.get(specimen)
        return flight.track if flight else self.completed.get(specimen)

    def in_flight(self) -> int:
        return len(self._flight)

    def counts_by_stage(self) -> dict[Stage, int]:
        return {stage: self._stages[stage] for stage in Stage}

    # --- change events ---

    def subscribe(self) -> asyncio.Queue[AlertChange]:
        """A queue per screen. A screen that falls behind loses its oldest changes (counted
        in ``dropped_changes``) and should reload ``alerts()``, rather than the engine
        holding memory for it without bound."""
        queue: asyncio.Queue[AlertChange] = asyncio.Queue(self._queue_size)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AlertChange]) -> None:
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    def on_change(self, callback: Callable[[AlertChange], None]) -> None:
        """A synchronous listener (an audit writer); it must not block."""
        self._callbacks.append(callback)

    def _emit(self, kind: ChangeKind, alert: Alert, at: datetime) -> None:
        change = AlertChange(kind, replace(alert), at)
        for callback in self._callbacks:
            callback(change)
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped_changes += 1
            queue.put_nowait(change)
