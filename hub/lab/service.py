"""The lab service: the turnaround alert engine and the critical-value desk, fed from the bus
(``hub/lab/feed.py``: the store's events and the LIS's status messages), ticked by one
background task, and fanned out to the big screens (检验全程监控大屏) as JSON events, one
bounded queue per screen.

It runs in the one process that consumes the lab queues (single active consumer): the engine
and the desk are in memory, rebuilt from the store at start, so that process's screens see the
work of every normalizer and every FHIR client. What the screen shows about a patient is
masked here (张*), once, so no route can forget it."""

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import orjson

from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.base.logs import log_event
from hub.base.tasks import Passes, cancel, wait_event
from hub.hl7v2.message import Message
from hub.lab.critical_alerts import AlertEvent, CriticalAlert, Staff, Step, local_time
from hub.lab.critical_desk import CriticalValueDesk
from hub.lab.feed import context_of
from hub.lab.lifecycle import LifecycleEvent, Stage, parse_time
from hub.lab.lifecycle_fhir import events_from_fhir
from hub.lab.lifecycle_hl7 import container_statuses, events_from_hl7
from hub.lab.pool_feed import PoolFeed
from hub.lab.pooling import PoolingService
from hub.lab.screen import ScreenView
from hub.lab.tat import Alert, AlertChange, AlertEngine, ChangeKind
from hub.lab.versions import VersionsSeen
from store.resources import ResourceStore

Clock = Callable[[], datetime]
Refresh = Callable[[], Awaitable[object]]

log = logging.getLogger(__name__)

STALE_AFTER_S = 5.0  # a first message later than this after the start may follow a takeover
PROBE_EVERY_S = 30.0  # how often each lab process sends itself a probe through its queue
ACTIVE_FOR_S = 3 * PROBE_EVERY_S  # heard from the queues within this: the active process
TICK_S = 1.0  # TAT deadlines are minutes; a second's resolution is plenty
KPI_EVERY_S = 30.0
SCREEN_QUEUE = 1_000
SETTLED_KEPT = timedelta(hours=24)  # a settled critical value waits this long for corrections
LAB_AUDIT = "urn:jianhu:codesystem:audit-event-type"

# who called the API that acknowledged: added to the desk's AuditEvent of that step
_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("lab_caller", default=None)


class LabService:
    def __init__(
        self,
        store: ResourceStore,
        record_audit: Callable[[Json], None],
        clock: Clock | None = None,
        engine: AlertEngine | None = None,
        desk: CriticalValueDesk | None = None,
    ) -> None:
        self._store = store
        self._record_audit = record_audit
        self._clock = clock or (lambda: datetime.now(HOSPITAL))
        self.engine = engine or AlertEngine(now=self._clock)
        self.desk = desk or CriticalValueDesk(clock=self._clock)
        self.pools = PoolFeed(PoolingService(store))
        self._remember_memory()
        self._screens: list[asyncio.Queue[bytes | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._passes = Passes()
        self._stages_dirty = False
        self._last_kpi = 0.0
        self._refresh: Refresh | None = None
        self._started = time.monotonic()
        self._last_heard: float | None = None
        self._unsaved: list[Json] = []  # Communications the store has not taken yet
        self._catching = asyncio.Lock()
        # the embedded bus serves one process: nobody else can hold the lab queues
        self.always_active = False

    def _remember_memory(self) -> None:
        """Wires a fresh or the first engine and desk to the screens."""
        self.view = ScreenView(self.engine, self.desk, self._clock)
        self._versions = VersionsSeen()
        self.engine.on_change(self._on_tat_change)
        self.desk.subscribe(self._on_critical)

    def _forget_memory(self) -> None:
        """Before a rebuild after a gap: what this process held may have been settled by the
        process that held the queues meanwhile, so it starts from nothing."""
        self.engine = AlertEngine(rules=self.engine.rules, now=self._clock)
        rules, policy = self.desk.rules, self.desk.policy
        self.desk = CriticalValueDesk(clock=self._clock, rules=rules, policy=policy)
        self._remember_memory()

    # --- lifecycle of the service ---

    def start(self, refresh: Refresh | None = None) -> None:
        """``refresh`` rebuilds the memory from the store (``hub/lab/rebuild.py``), as done
        just before this start; ``catch_up`` calls it again when needed."""
        self._refresh, self._started = refresh, time.monotonic()
        self._task = asyncio.create_task(self._run(), name="lab-service")

    @property
    def active(self) -> bool:
        """Whether this process holds the lab queues: it heard from them lately (every lab
        process sends itself a probe through them every ``PROBE_EVERY_S``, and only the
        active consumer receives them). A standby neither escalates nor serves screens."""
        if self.always_active:
            return True
        heard = self._last_heard
        return heard is not None and time.monotonic() - heard < ACTIVE_FOR_S

    async def catch_up(self) -> None:
        """Awaited before each message of the lab queues, probes included. The first message
        after a silence may be a standby's first once it took the queues over (or the queues
        coming back to this process): what the active process did meanwhile is in the store,
        so the memory is rebuilt from nothing first, and the screens reload."""
        if self.always_active or self.active:
            self._last_heard = time.monotonic()
            return
        async with self._catching:
            if self.active:
                return  # another handler caught up while this one waited
            since_start = time.monotonic() - self._started
            if self._refresh is not None and (
                self._last_heard is not None or since_start > STALE_AFTER_S
            ):
                self._forget_memory()
                await self._refresh()
                self._broadcast({"type": "reload"})
            self._last_heard = time.monotonic()

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        self.close_screens()

    def close_screens(self) -> None:
        """Ends every live stream (the server is shutting down): a None tells it to return."""
        for queue in list(self._screens):
            _offer(queue, None)

    async def look_now(self) -> None:
        """Wake the background task and return once a step begun after this call has ended:
        after a test moves the clock, what was due (an escalation, a notification to write
        again) is done."""
        mark = self._passes.begun
        self._wake.set()
        await self._passes.after(mark)

    async def _run(self) -> None:
        while True:
            self._passes.begin()
            try:
                await self._step()
            except Exception as exc:  # keep ticking: a broken step must not stop the alerts
                log_event(log, "lab_tick_failed", logging.ERROR, error=type(exc).__name__)
            await self._passes.end()
            due = self.desk.next_due()
            wait = TICK_S
            if due is not None:
                wait = min(wait, max((due - self._clock()).total_seconds(), 0.0))
            await wait_event(self._wake, wait)
            self._wake.clear()

    async def _step(self) -> None:
        self.engine.tick()
        await self._save_communications()
        if self.active:  # a standby's desk is stale: escalating from it would call wrongly
            await self.desk.escalate_due()
        if self._stages_dirty:
            self._stages_dirty = False
            self._broadcast({"type": "stages", "stages": self.view.stages()})
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_kpi >= KPI_EVERY_S:
            self._last_kpi = loop.time()
            for settled in self.desk.forget(self._clock() - SETTLED_KEPT):
                self.view.forget(settled.observation)
            if self._screens:
                self._broadcast({"type": "kpi", "kpi": self.view.kpi()})

    # --- feeding: the lab queues (hub/lab/feed.py) ---

    async def take_resource(self, resource: Json, context: Sequence[Json]) -> None:
        """One stored resource, with what it refers to. An Observation is also a result for
        the critical-value desk. Handlers run concurrently and a retry comes back late, so a
        version older than one already taken is ignored: a critical value corrected to normal
        must not come back from its stale first version."""
        if not self._versions.newer(resource):
            return
        observed = _last_updated(resource) or self._clock()
        self._apply(events_from_fhir([resource], observed, context=context))
        if resource["resourceType"] == "Observation":
            patient = self.view.remember(resource, context)
            alert = await self.desk.receive(resource, patient)
            if alert is None:
                self.view.forget(f"Observation/{resource['id']}")
            self._wake.set()  # a new alert has its own escalation deadline: recompute the sleep
            await self.pools.result(resource, context)

    async def take_deletion(self, kind: str, id_: str, version: int | None) -> None:
        """A lab resource deleted (entered in error): a result deleted closes its alert, a
        tube or an order deleted leaves the wall."""
        meta = {"versionId": str(version)} if version is not None else {}
        gone: Json = {"resourceType": kind, "id": id_, "meta": meta}
        if not self._versions.newer(gone):
            return
        if kind == "Observation":
            if await self.desk.receive({**gone, "status": "entered-in-error"}) is not None:
                self.view.forget(f"Observation/{id_}")
            return
        origin = f"{kind} deleted"
        if kind == "Specimen":
            withdrawn = LifecycleEvent(
                Stage.ORDERED, self._clock(), origin, specimen=id_, cancelled=True
            )
        elif kind == "ServiceRequest":
            withdrawn = LifecycleEvent(
                Stage.ORDERED, self._clock(), origin, request=id_, cancelled=True
            )
        else:
            return
        self._apply([withdrawn])

    async def restore_critical(
        self, alert_id: str, observation: Json, raised: datetime, level: int
    ) -> bool:
        """An alert open before a restart back on the desk and the screen, unannounced."""
        patient = self.view.remember(observation, await context_of(self._store, observation))
        if self.desk.restore(alert_id, observation, patient, raised, level) is None:
            self.view.forget(f"Observation/{observation['id']}")
            return False
        self._wake.set()
        return True

    async def take_hl7(self, message: Message, replay: bool = False) -> None:
        """A status message from the LIS: the stages it reports, and for a pool tube its
        receipt and registration (混检), unless the message is replayed by a rebuild."""
        self._apply(events_from_hl7(message))
        if replay:
            return
        for status in container_statuses(message):
            await self.pools.status(status, message.sender[0])

    def _apply(self, events: list[LifecycleEvent]) -> None:
        if not events:
            return
        before = self.engine.counts_by_stage()
        self.engine.apply_all(events)
        if self.engine.counts_by_stage() != before:
            self._stages_dirty = True  # sent by the next tick: one update a second, not per tube

    # --- acknowledgements (the routes check the caller's role) ---

    def acknowledge_tat(self, alert_id: str, by: str, note: str, caller: str) -> Alert:
        alert = self.engine.acknowledge(alert_id, by, note)
        self._record_audit(_tat_audit(alert, caller))
        return alert

    async def acknowledge_critical(
        self, alert_id: str, by: Staff, clinician: Staff, read_back: str, caller: str
    ) -> CriticalAlert:
        token = _caller.set(caller)
        try:
            return await self.desk.acknowledge(
                alert_id, by=by, clinician=clinician, read_back=read_back
            )
        finally:
            _caller.reset(token)

    # --- listeners of the engine and the desk ---

    def _on_tat_change(self, change: AlertChange) -> None:
        self._broadcast(
            {"type": "tat", "kind": change.kind.value, "alert": self.view.tat_json(change)}
        )

    async def _on_critical(self, event: AlertEvent) -> None:
        audit = event.audit
        if (caller := _caller.get()) is not None:
            audit = {**audit, "agent": [*audit["agent"], _caller_agent(caller)]}
        self._record_audit(audit)
        if event.communication is not None:
            self._unsaved.append(event.communication)
            await self._save_communications()
        # the desk keeps its records for whoever persists them; here they are persisted
        self.desk.audit.clear()
        self.desk.communications.clear()
        alert = self.view.critical_json(event.alert)
        if event.step in (Step.ACKNOWLEDGED, Step.CLOSED):
            self.view.forget(event.alert["observation"])
        self._broadcast({"type": "critical", "step": event.step.value, "alert": alert})

    async def _save_communications(self) -> None:
        """The 危急值通知 of each acknowledgement into the store; one the store refused now
        (it is busy, or down) is tried again at every tick rather than lost. Written by id,
        so a second try after a first that did succeed changes nothing."""
        while self._unsaved:
            communication = self._unsaved[0]
            try:
                await self._store.update(communication)
            except Exception as exc:
                log_event(log, "communication_not_saved", logging.WARNING, error=type(exc).__name__)
                return
            self._unsaved.pop(0)

    # --- screens ---

    def subscribe(self) -> "asyncio.Queue[bytes | None]":
        """A screen's queue of Server-Sent Events frames (``data: {...}``), each serialised
        once for every screen; a None ends the stream."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(SCREEN_QUEUE)
        self._screens.append(queue)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[bytes | None]") -> None:
        with contextlib.suppress(ValueError):
            self._screens.remove(queue)

    @property
    def screens(self) -> int:
        return len(self._screens)

    def _broadcast(self, event: Json) -> None:
        if not self._screens:
            return
        frame = sse_frame(event)
        for queue in list(self._screens):
            _offer(queue, frame)


def sse_frame(event: Json) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


_RELOAD = sse_frame({"type": "reload"})


def _offer(queue: "asyncio.Queue[bytes | None]", frame: bytes | None) -> None:
    """A screen that fell behind drops what it holds and reloads the snapshot instead, so
    one slow wall never holds memory or the feed back."""
    if queue.full():
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_RELOAD)
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(frame)


def _last_updated(resource: Json) -> datetime | None:
    """When the store took this version: what times a stage the resource itself does not."""
    return parse_time((resource.get("meta") or {}).get("lastUpdated"))


def _caller_agent(caller: str) -> Json:
    return {"who": {"identifier": {"value": caller}}, "name": caller, "requestor": False}


def _tat_audit(alert: Alert, caller: str) -> Json:
    """The acknowledgement of a TAT alert as an AuditEvent: the named person and the caller."""
    ack = alert.acknowledgement
    assert ack is not None
    details = [{"type": "alert", "valueString": alert.id}]
    if ack.note:
        details.append({"type": "note", "valueString": ack.note})
    entity: Json = {"what": {"reference": f"Specimen/{alert.specimen}"}, "detail": details}
    return {
        "resourceType": "AuditEvent",
        "id": uuid.uuid4().hex,
        "type": {"system": LAB_AUDIT, "code": "lab-tat", "display": "检验周转超时"},
        "subtype": [{"system": LAB_AUDIT, "code": ChangeKind.ACKNOWLEDGED.value}],
        "action": "U",
        "recorded": local_time(ack.at),
        "outcome": "0",
        "outcomeDesc": f"{alert.label}：已确认",
        "agent": [
            {"who": {"display": ack.by}, "name": ack.by, "requestor": True},
            _caller_agent(caller),
        ],
        "source": {"observer": {"display": "集成平台检验周转监控"}},
        "entity": [entity],
    }
