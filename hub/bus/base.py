"""The bus interface: publish after confirm, consume with ack in exactly one place.

Handlers receive a ``Delivery`` and return normally (ack) or raise (retry or dead letter, see
``outcome.decide``). They never ack themselves. Both implementations share ``_run_handler`` so
timing, logging and metrics are the same everywhere.
"""

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter, Histogram

from hub.base.correlation import Origin, within
from hub.base.envelope import Envelope
from hub.base.errors import DeadLetterNotFoundError, JianhuError
from hub.base.logs import log_event
from hub.base.metrics import BusMetrics
from hub.bus.outcome import ACKED, Disposition, Verdict, decide
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND, QueueSpec, topic_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One delivery of an envelope to one queue's handler."""

    envelope: Envelope
    queue: str
    routing_key: str  # the key it was first published with, also after retries and redrives
    attempt: int  # 1 on the first delivery, +1 for each delayed retry
    redelivered: bool  # the broker delivered it before without an ack (a crash or a cut link)


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True)
class PlainMessage:
    """A message for a system outside the hub (an answer, a delivery): a plain body (an ACK,
    ER7, FHIR JSON), not an envelope, in the form that system publishes in."""

    body: bytes
    content_type: str
    correlation_id: str  # an answer's: the asker's correlation id (or message id), as RPC expects
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str = ""  # the same on every send of one delivery (the receiver's dedup key)


@dataclass(frozen=True)
class DeadLetter:
    """A message that reached a queue's dead-letter queue, with why it died."""

    envelope: Envelope
    queue: str
    routing_key: str
    attempts: int
    error_class: str
    error: str
    dead_at: datetime | None


@dataclass
class QueueDepth:
    queue: str
    ready: int
    dead: int


@dataclass
class _Inflight:
    """Handler tasks still running, so a graceful stop can wait for them."""

    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def track(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, timeout_s: float) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout_s)

    async def cancel(self) -> None:
        pending = list(self.tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class Bus(ABC):
    """The message bus the rest of the hub depends on."""

    def __init__(self, settings: BusSettings, metrics: BusMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.specs: dict[str, QueueSpec] = {}
        self._inflight = _Inflight()
        # deliveries this process has handled, and a condition told at each: ``handled_until``
        self.handled_count = 0
        self._handled_one = asyncio.Condition()
        self._metric_children: dict[str, tuple[Counter, Histogram]] = {}
        self._publish_counters: dict[tuple[str, str], list[Counter]] = {}

    # --- lifecycle ---
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self, grace_s: float | None = None) -> None:
        """Stop consuming, let in-flight handlers finish within the grace time, disconnect.

        Handlers still running after the grace time are cancelled unacked: their messages are
        delivered again later (default grace: the handler timeout).
        """

    @abstractmethod
    async def ping(self) -> None:
        """Raise ``BusError`` when the bus cannot take a publish right now."""

    # --- topology and publishing ---
    @abstractmethod
    async def declare(self, spec: QueueSpec) -> None:
        """Declare a work queue, its dead-letter queue and its bindings (idempotent)."""

    @abstractmethod
    async def publish(self, envelope: Envelope, routing_key: str, exchange: str = INBOUND) -> None:
        """Return only after the message is durable; raise ``PublishError`` if it is not."""

    @abstractmethod
    async def publish_many(
        self, items: Sequence[tuple[Envelope, str]], exchange: str = INBOUND
    ) -> None:
        """Publish a batch with confirms pipelined; raise if any one was not confirmed."""

    @abstractmethod
    async def reply(self, reply_to: str, answer: PlainMessage) -> None:
        """Send an answer to the queue a system's message named in ``reply_to`` (the AMQP
        default exchange, as RPC over RabbitMQ does). Not confirmed, as RPC replies are not:
        an asker that hears nothing asks again, and is answered again (a resend is answered
        from the archive). ``PublishError`` when it cannot be sent at all."""

    @abstractmethod
    async def publish_plain(self, exchange: str, routing_key: str, message: PlainMessage) -> None:
        """Publish a plain message for a system outside the hub; return once the broker has
        confirmed it, raise ``PublishError`` if it did not."""

    # --- consuming ---
    @abstractmethod
    async def consume(self, queue: str, handler: Handler) -> None:
        """Start delivering the queue's messages to the handler (returns at once)."""

    @abstractmethod
    async def stop_consuming(self, grace_s: float) -> None:
        """Take no new deliveries; let in-flight handlers finish within the grace time."""

    # --- dead letters and operations ---
    @abstractmethod
    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]: ...

    @abstractmethod
    async def redrive(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Put dead letters (all, or those ids) back on their queue as fresh first attempts."""

    @abstractmethod
    async def depths(self) -> list[QueueDepth]: ...

    # --- shared behaviour ---
    async def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        for dead in await self.dead_letters(queue, limit=1_000_000):
            if dead.envelope.id == message_id:
                return dead
        raise DeadLetterNotFoundError(f"no dead letter {message_id} in {queue}")

    def queues_for(self, exchange: str, routing_key: str) -> list[str]:
        """The declared queues a routing key reaches (used for per-queue publish metrics)."""
        return [
            spec.name
            for spec in self.specs.values()
            if spec.exchange == exchange
            and any(topic_matches(pattern, routing_key) for pattern in spec.bindings)
        ]

    def _count_published(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        log_event(
            log,
            "published",
            logging.DEBUG,
            exchange=exchange,
            routing_key=routing_key,
            message_id=envelope.id,
            correlation_id=envelope.correlation_id or envelope.id,  # the message's, not ours
        )
        counters = self._publish_counters.get((exchange, routing_key))
        if counters is None:
            if len(self._publish_counters) > 10_000:  # keys with ids in them: do not grow forever
                self._publish_counters.clear()
            counters = [
                self.metrics.published.labels(queue)
                for queue in self.queues_for(exchange, routing_key)
            ]
            self._publish_counters[(exchange, routing_key)] = counters
        for counter in counters:
            counter.inc()

    def _remember(self, spec: QueueSpec) -> None:
        """Record a declared queue (its bindings change which publish counters apply)."""
        self.specs[spec.name] = spec
        self._publish_counters.clear()

    async def _handled(self, handler: Handler, delivery: Delivery) -> Disposition:
        try:
            async with asyncio.timeout(self.settings.handler_timeout_s):  # no extra task
                await handler(delivery)
            return ACKED
        except Exception as exc:  # every failure is classified, none escapes the bus
            if not isinstance(exc, JianhuError):  # not raised on purpose: a bug, its traceback
                log_event(
                    log,
                    "handler_failed",
                    logging.ERROR,
                    exc_info=True,
                    queue=delivery.queue,
                    message_id=delivery.envelope.id,
                )
            return decide(exc, delivery.attempt, self.settings.retry_delays_s)

    async def _run_handler(self, handler: Handler, delivery: Delivery) -> Disposition:
        started = time.perf_counter()
        envelope = delivery.envelope
        # what the handler writes and logs is traced to the message that started it
        with within(Origin(envelope.correlation_id or envelope.id, envelope.source)):
            outcome = await self._handled(handler, delivery)
            consumed, latency = self._queue_metrics(delivery.queue)
            latency.observe(time.perf_counter() - started)
            if outcome.verdict is Verdict.ACK:
                consumed.inc()
                log_event(log, "acked", logging.DEBUG, queue=delivery.queue, message_id=envelope.id)
            else:
                self._count_failure(delivery, outcome)
        return outcome

    async def _handled_and_settled(self) -> None:
        """Called by each bus once a delivery's outcome is settled (acked, or its retry or
        dead-letter copy confirmed): what ``handled_until`` wakes up for, so a check of a dead
        queue after a refusal sees the dead letter."""
        async with self._handled_one:
            self.handled_count += 1
            self._handled_one.notify_all()

    async def handled_until(
        self, check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0
    ) -> None:
        """Until ``check()`` holds, looking again each time this process has handled a
        delivery and settled its outcome (on either bus): what a test awaits instead of polling
        for a handler's result, a retry or a dead letter. ``TimeoutError`` after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                seen = self.handled_count
                if await check():
                    return
                await self._handled_past(seen)

    async def _handled_past(self, count: int) -> None:
        async with self._handled_one:
            await self._handled_one.wait_for(lambda: self.handled_count > count)

    def _queue_metrics(self, queue: str) -> tuple[Counter, Histogram]:
        """The per-queue metric children, looked up once (``labels()`` costs a lock each call)."""
        children = self._metric_children.get(queue)
        if children is None:
            children = (
                self.metrics.consumed.labels(queue),
                self.metrics.handler_seconds.labels(queue),
            )
            self._metric_children[queue] = children
        return children

    def _count_failure(self, delivery: Delivery, outcome: Disposition) -> None:
        queue, message_id = delivery.queue, delivery.envelope.id
        retry = outcome.verdict is Verdict.RETRY
        (self.metrics.retried if retry else self.metrics.dead_lettered).labels(queue).inc()
        # work that waits on purpose (a paused destination, a receiver down) is retried often:
        # its cause is told once where it is kept (the ledger), not at every look
        waiting = retry and outcome.error_class.endswith(".KeepRetryingError")
        log_event(
            log,
            "retried" if retry else "dead-lettered",
            logging.DEBUG if waiting else logging.WARNING,
            queue=queue,
            message_id=message_id,
            attempt=delivery.attempt,
            delay_s=outcome.delay_s,
            error_class=outcome.error_class,
            error=outcome.error,
        )
