"""The running hub: settings, metrics, bus, store and routes wired together, started and stopped
as one unit. Built once by the entry point and passed down; no globals."""

import asyncio
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import aiohttp

from adapters.framework.delivery import Courier
from adapters.registry import configured_adapters, configured_jobs
from fhir_profiles.validation import preload
from hub.base import site_files
from hub.base.errors import BusError, ConfigurationError
from hub.base.logs import log_event
from hub.base.metrics import HubMetrics
from hub.base.tasks import cancel
from hub.bus.base import Bus
from hub.bus.embedded import EmbeddedBus
from hub.bus.rabbit import RabbitBus
from hub.events import EventRelay
from hub.fhir.audit import AuditTrail
from hub.fhir.terminology import Terminology
from hub.fhir.terminology_seed import ensure_code_systems
from hub.hl7v2.client import MllpClient
from hub.hl7v2.ingest import Ingest
from hub.hl7v2.offload import BigMessages
from hub.hl7v2.publishing import Publisher
from hub.hl7v2.recovery import StrandedMessages
from hub.hl7v2.retention import Retention
from hub.hl7v2.server import MllpListener
from hub.lab import feed as lab_feed
from hub.lab.rebuild import rebuild as rebuild_lab
from hub.lab.service import PROBE_EVERY_S, LabService
from hub.lab.settings import lab_settings
from hub.schedule import Every
from hub.scheduler import Job, Scheduler
from hub.settings import Settings
from routes.table import RoutingTable, default_table
from store.archive import MessageArchive
from store.base import Store
from store.factory import make_store as store_for
from store.leases import OK
from store.resources import ResourceStore

DELIVERY_INTERVAL = timedelta(seconds=10)  # how soon a failed submission's due retry goes out
DELIVERY_BATCH = 100

log = logging.getLogger(__name__)


def make_bus(
    settings: Settings, metrics: HubMetrics, clock: Callable[[], float] = time.time
) -> Bus:
    """``clock``: when the embedded bus's retries come due (a test moves it by hand)."""
    if settings.uses_embedded_bus:
        path = settings.data_dir / "bus.sqlite3"
        return EmbeddedBus(path, settings.bus, metrics.bus, clock=clock)
    return RabbitBus(settings.amqp_url.get_secret_value(), settings.bus, metrics.bus)


def make_store(settings: Settings) -> Store:
    return store_for(settings.mongo_url.get_secret_value(), settings.data_dir)


@dataclass
class Runtime:
    settings: Settings
    # the routing table; by default built once the site's folder is known (the destinations'
    # queues come from a table there)
    routing: InitVar[RoutingTable | None] = None
    metrics: HubMetrics = field(default_factory=HubMetrics)
    bus_clock: Callable[[], float] = time.time  # the embedded bus's, for its retry delays
    bus: Bus = field(init=False)
    store: Store = field(init=False)
    relay: EventRelay | None = field(init=False, default=None)
    audit: AuditTrail | None = field(init=False, default=None)
    terminology: Terminology | None = field(init=False, default=None)
    listeners: list[MllpListener] = field(init=False, default_factory=list)
    publisher: Publisher = field(init=False)
    big_messages: BigMessages = field(init=False)
    stranded: StrandedMessages | None = field(init=False, default=None)
    retention: Retention | None = field(init=False, default=None)
    _http: aiohttp.ClientSession | None = field(init=False, default=None)
    _mllp: dict[tuple[str, int, str, int], MllpClient] = field(init=False, default_factory=dict)
    courier: Courier = field(init=False)
    scheduler: Scheduler | None = field(init=False, default=None)
    lab: LabService | None = field(init=False, default=None)  # where the lab queues are consumed
    _lab_probe: asyncio.Task[None] | None = field(init=False, default=None)
    table: RoutingTable = field(init=False)

    def __post_init__(self, routing: RoutingTable | None) -> None:
        site_files.use(self.settings.config_dir)  # None: JIANHU_CONFIG_DIR, or the shipped
        self.table = routing if routing is not None else default_table()
        self.bus = make_bus(self.settings, self.metrics, self.bus_clock)
        self.store = make_store(self.settings)

    @property
    def resources(self) -> ResourceStore:
        return self.store.resources

    @property
    def archive(self) -> MessageArchive:
        return self.store.archive

    def http_client(self) -> aiohttp.ClientSession:
        """One pooled HTTP client for every outbound call (rest-hooks, adapters)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    def mllp_client(
        self,
        host: str,
        port: int,
        charset: str,
        timeout_s: float = 30.0,
        tls: ssl.SSLContext | None = None,
        attempts: int = 3,
    ) -> MllpClient:
        """One reused connection per receiver and character set for outbound HL7 (closed when
        the hub stops)."""
        # one connection per receiver and way of trusting it: two destinations that trust
        # different CAs for one address must not share a connection the first one vetted
        key = (host, port, charset, id(tls) if tls is not None else 0)
        if key not in self._mllp:
            self._mllp[key] = MllpClient(
                host, port, charset, timeout_s=timeout_s, attempts=attempts, tls=tls
            )
        return self._mllp[key]

    async def start(self, consume: bool = True) -> None:
        self._check_consume()
        if self.settings.fhir.validate_input:
            await asyncio.to_thread(preload)
        await self.store.open()
        await ensure_code_systems(self.store.resources)
        await self.bus.start()
        for spec in self.table.specs():
            await self.bus.declare(spec)
        if not self.settings.intake_only:
            # An intake-only process leaves the outbox to the workers: relaying would take the
            # clinical store's write lock, which a normalizer holds for whole transactions, and
            # every wait for it would stall the MLLP listener's event loop.
            self.relay = EventRelay(self.bus, self.store.resources)
            self.relay.start()
        self.audit = audit = AuditTrail(self.store.resources)
        self.terminology = Terminology(self.store.resources)
        audit.start()
        hl7 = self.settings.hl7
        self.publisher = Publisher(self.bus, self.store.archive, hl7.claim_grace_s)
        mongo_url = self.settings.mongo_url.get_secret_value()
        self.big_messages = BigMessages(mongo_url, self.settings.data_dir)
        self.stranded = StrandedMessages(self.publisher, flag_only=hl7.stranded == "flag")
        self.stranded.start()
        for listener_settings in hl7.listeners:
            ingest = Ingest(
                self.publisher, self.store.archive, listener_settings, hl7.message_types
            )
            port = (
                listener_settings.port
                if listener_settings.port is not None
                else self.settings.mllp_port
            )
            listener = MllpListener(ingest, listener_settings, self.settings.http_host, port)
            await listener.start()
            self.listeners.append(listener)
        self.retention = Retention(self.store.archive, self.settings.hl7.retention_days)
        self.retention.start()
        self.courier = Courier(self.store.ledger, configured_adapters(self.settings))
        if consume and not self.settings.intake_only:
            # every worker process runs the scheduler; the lease lets one run each due time
            jobs = [Job("deliveries", Every(DELIVERY_INTERVAL), self._deliver_due)]
            jobs += [
                Job(job.name, job.schedule, partial(job.run, self), catch_up=job.catch_up)
                for job in configured_jobs(self.settings)
            ]
            self.scheduler = Scheduler(self.store.jobs, jobs)
            self.scheduler.start()
        await self._start_lab(consume, audit)
        if consume:
            for route in self.table.routes:
                if not self.settings.consumes(route.queue):
                    continue
                await self.bus.consume(route.queue, self.table.handlers[route.handler](self))
        log_event(
            log,
            "started",
            bus=type(self.bus).__name__,
            store=type(self.store).__name__,
            routes=len(self.table.routes),
            mllp_ports=[listener.port for listener in self.listeners],
        )

    async def _start_lab(self, consume: bool, audit: AuditTrail) -> None:
        """The lab service runs where the lab queues are consumed, rebuilt from the store
        before the first message of its queues."""
        if consume and self.settings.consumes(lab_feed.FHIR_QUEUE):
            self.lab = LabService(self.store.resources, audit.record)
            self.lab.always_active = self.settings.uses_embedded_bus
            await self._rebuild_lab()
            self.lab.start(refresh=self._rebuild_lab)
            if not self.lab.always_active:
                self._lab_probe = asyncio.create_task(self._probe_lab(), name="lab-probe")

    async def _probe_lab(self) -> None:
        """Every lab process sends itself a probe through the lab queue; the broker hands it
        to the active consumer only, which is how a process learns it holds the queues."""
        sender = f"{socket.gethostname()}:{os.getpid()}"
        while True:
            try:
                await self.bus.publish(lab_feed.probe(sender), lab_feed.PROBE_KEY)
            except BusError as exc:  # the bus is down: the next probe will tell
                log_event(log, "lab_probe_failed", error=type(exc).__name__)
            await asyncio.sleep(PROBE_EVERY_S)

    async def _rebuild_lab(self) -> None:
        assert self.lab is not None
        since = datetime.now(UTC) - timedelta(hours=lab_settings(self.settings).rebuild_hours)
        await rebuild_lab(self.lab, self.store.resources, self.store.archive, since)

    async def _deliver_due(self) -> None:
        while await self.courier.run_due() == DELIVERY_BATCH:
            pass  # a backlog (after an outage): keep going until it is worked off

    async def last_success(self, job: str) -> datetime | None:
        runs = await self.store.jobs.runs(job)
        return next((run.started for run in runs if run.outcome == OK), None)

    def _check_consume(self) -> None:
        if self.settings.consumed != {"all"} and self.settings.uses_embedded_bus:
            raise ConfigurationError(
                "JIANHU_CONSUME needs RabbitMQ (JIANHU_AMQP_URL): the embedded bus serves the "
                "process that holds it, so its queues would have no other consumer"
            )
        named = self.settings.consumed - {"all", "none"}
        unknown = sorted(named - {route.queue for route in self.table.routes})
        if unknown:
            raise ConfigurationError(f"JIANHU_CONSUME names queues with no route: {unknown}")
        if len({self.settings.consumes(queue) for queue in lab_feed.QUEUES}) > 1:
            raise ConfigurationError(
                f"JIANHU_CONSUME: the lab service needs both of its queues {lab_feed.QUEUES}"
            )

    async def settle(self, timeout_s: float = 30.0) -> None:
        """With the embedded bus: return once the hub has nothing left to do now. Every write
        committed is relayed, every message due is handled, and what those handlers wrote is
        relayed and handled in turn. What tests await instead of watching for a result."""
        bus = self.bus
        if not isinstance(bus, EmbeddedBus) or self.relay is None:
            raise ConfigurationError("settle needs the embedded bus and the event relay")
        async with asyncio.timeout(timeout_s):
            while True:
                await self.relay.drain()
                await bus.settled()
                if await self.resources.pending_events(1):
                    continue  # the handlers wrote more: relay and handle that too
                if await bus.settled_now():
                    return  # (a relay that ran meanwhile published nothing still due)

    async def _close_clients(self) -> None:
        """The MLLP destinations' connections, the adapters' HTTP sessions and database pools."""
        for client in self._mllp.values():
            await client.close()
        courier: Courier | None = getattr(self, "courier", None)  # None: never started
        for adapter in courier.adapters.values() if courier is not None else ():
            await adapter.transport.close()

    async def stop(self) -> None:
        """Stop consuming, let in-flight handlers finish within the grace time, then close."""
        log_event(log, "stopping", grace_s=self.settings.shutdown_grace_s)
        for listener in self.listeners:  # first: no new messages while the rest shuts down
            await listener.stop()
        self.listeners.clear()
        if self.retention is not None:
            await self.retention.stop()
        if self.stranded is not None:
            await self.stranded.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        await cancel(self._lab_probe)
        # the handlers still running may record AuditEvents (a critical value raised): the
        # audit trail and the lab stop after them, so the trail's last flush holds them all
        await self.bus.close(grace_s=self.settings.shutdown_grace_s)
        await self.big_messages.close()
        if self.lab is not None:
            await self.lab.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.audit is not None:
            await self.audit.stop()
        if self._http is not None:
            await self._http.close()
        await self._close_clients()
        await self.store.close()
        log_event(log, "stopped")
