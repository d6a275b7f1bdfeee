"""The RabbitMQ bus, through aio-pika: robust connection, publisher confirms, quorum queues.

One channel publishes (confirms on, unroutable messages raise); each consumed queue has its own
channel with the configured prefetch. Acks happen only in ``_on_message``, after the handler.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit
from weakref import WeakKeyDictionary

import aio_pika
import aiormq
import aiormq.abc
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from hub.base.envelope import Envelope
from hub.base.errors import BusError, PermanentError, PublishError, TopologyError
from hub.base.logs import log_event
from hub.base.metrics import BusMetrics
from hub.bus import topology as topo
from hub.bus.acks import AckCoalescer, Settlement
from hub.bus.base import Bus, DeadLetter, Delivery, Handler, PlainMessage, QueueDepth
from hub.bus.outcome import Disposition, Verdict
from hub.bus.rabbit_messages import dead_letter_of, delivery_of
from hub.bus.rabbit_publish import confirmed, confirmed_plain, send_reply
from hub.bus.settings import BusSettings

log = logging.getLogger(__name__)


class NotPublishedByTheHubError(PermanentError):
    """An envelope whose user_id is not the hub's broker user."""


class RabbitBus(Bus):
    def __init__(self, url: str, settings: BusSettings, metrics: BusMetrics) -> None:
        super().__init__(settings, metrics)
        self._url = url
        # every envelope the hub publishes carries its broker user as user_id, which RabbitMQ
        # checks; an envelope without it was not published by the hub (a system with rights
        # to an exchange of the hub's), and is set aside unread
        self._user = unquote(urlsplit(url).username or "guest")
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._reply_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._consumers: list[tuple[AbstractQueue, str, AbstractChannel]] = []
        self._ack_coalescers: WeakKeyDictionary[aiormq.abc.AbstractChannel, AckCoalescer] = (
            WeakKeyDictionary()
        )

    # --- lifecycle ---
    async def start(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(
                self._url,
                timeout=self.settings.connect_timeout_s,
                reconnect_interval=self.settings.reconnect_interval_s,
            )
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            raise BusError(f"cannot connect to RabbitMQ: {type(exc).__name__}: {exc}") from exc
        self._publish_channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        await self._declare_exchanges()
        await self._declare_retry_queues()

    async def close(self, grace_s: float | None = None) -> None:
        await self.stop_consuming(self.settings.handler_timeout_s if grace_s is None else grace_s)
        await self._inflight.cancel()  # unacked: the broker requeues them when the channel closes
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def ping(self) -> None:
        if self._connection is None or self._connection.is_closed:
            raise BusError("not connected to RabbitMQ")
        if self._publish_channel is None or self._publish_channel.is_closed:
            raise BusError("the publishing channel is closed")

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise BusError("the bus is not started")
        return self._connection

    # --- topology ---
    async def _declare_exchanges(self) -> None:
        channel = self._channel()
        for name in topo.TOPIC_EXCHANGES:
            self._exchanges[name] = await channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        for name in topo.DIRECT_EXCHANGES:
            self._exchanges[name] = await channel.declare_exchange(
                name, aio_pika.ExchangeType.DIRECT, durable=True
            )

    async def _declare_retry_queues(self) -> None:
        channel = self._channel()
        for delay_s in set(self.settings.retry_delays_s):
            queue = await channel.declare_queue(
                topo.retry_queue_name(delay_s),
                durable=True,
                arguments=topo.retry_queue_arguments(delay_s),
            )
            await queue.bind(
                self._exchanges[topo.RETRY], routing_key=f"{topo.retry_tier(delay_s)}.#"
            )

    async def declare(self, spec: topo.QueueSpec) -> None:
        channel = self._channel()
        exchange = await self._exchange(spec.exchange)
        arguments = topo.work_queue_arguments(
            spec.name, self.settings.delivery_limit, spec.single_active_consumer
        )
        queue = await channel.declare_queue(spec.name, durable=True, arguments=arguments)
        for pattern in spec.bindings:
            await queue.bind(exchange, routing_key=pattern)
        for pattern in spec.retired_bindings:  # no error when it is not there
            await queue.unbind(exchange, routing_key=pattern)
        await queue.bind(self._exchanges[topo.REQUEUE], routing_key=topo.requeue_binding(spec.name))
        dead = await channel.declare_queue(
            spec.dead_queue, durable=True, arguments=topo.dead_queue_arguments(spec.dead_queue)
        )
        await dead.bind(self._exchanges[topo.DEAD], routing_key=spec.name)
        await dead.bind(self._exchanges[topo.DEAD], routing_key=spec.dead_queue)
        self._remember(spec)

    async def _exchange(self, name: str) -> AbstractExchange:
        """A known exchange, checked passively on a throwaway channel the first time.

        Checking on a separate channel keeps a 404 from closing the shared publishing channel.
        """
        if name not in self._exchanges:
            probe = await self.connection.channel()
            try:
                await probe.get_exchange(name, ensure=True)
            except aiormq.exceptions.ChannelNotFoundEntity as exc:
                raise TopologyError(f"exchange {name!r} does not exist") from exc
            finally:
                if not probe.is_closed:
                    await probe.close()
            self._exchanges[name] = await self._channel().get_exchange(name, ensure=False)
        return self._exchanges[name]

    def _channel(self) -> AbstractChannel:
        if self._publish_channel is None:
            raise BusError("the bus is not started")
        return self._publish_channel

    # --- publishing ---
    async def publish(
        self, envelope: Envelope, routing_key: str, exchange: str = topo.INBOUND
    ) -> None:
        await self._exchange(exchange)  # a missing exchange fails here, not on the channel
        await confirmed(self._channel(), exchange, routing_key, envelope, None, self._user)
        self._count_published(exchange, routing_key, envelope)

    async def publish_many(
        self, items: Sequence[tuple[Envelope, str]], exchange: str = topo.INBOUND
    ) -> None:
        """Keep up to ``publish_window`` confirms in flight, refilling as each one arrives."""
        await self._exchange(exchange)  # a missing exchange fails here, not on the channel
        window = asyncio.Semaphore(self.settings.publish_window)
        failures: list[PublishError] = []

        async def one(envelope: Envelope, key: str) -> None:
            try:
                await confirmed(self._channel(), exchange, key, envelope, None, self._user)
                self._count_published(exchange, key, envelope)
            except PublishError as exc:
                failures.append(exc)
            finally:
                window.release()

        pending = []
        for envelope, key in items:
            await window.acquire()
            if failures:
                break  # stop early; what was in flight still completes below
            pending.append(asyncio.ensure_future(one(envelope, key)))
        await asyncio.gather(*pending)
        if failures:
            raise failures[0]

    async def reply(self, reply_to: str, answer: PlainMessage) -> None:
        # a channel of its own, without confirms: a reply's confirm would otherwise wait in line
        # behind the quorum-queue publishes of the shared channel (half a second under load)
        if self._reply_channel is None or self._reply_channel.is_closed:
            self._reply_channel = await self.connection.channel(publisher_confirms=False)
        await send_reply(self._reply_channel, reply_to, answer)

    async def publish_plain(self, exchange: str, routing_key: str, message: PlainMessage) -> None:
        await self._exchange(exchange)  # a missing exchange fails here, not on the channel
        await confirmed_plain(self._channel(), exchange, routing_key, message)

    async def _publish_direct(
        self, exchange: str, routing_key: str, envelope: Envelope, headers: dict[str, Any]
    ) -> None:
        await confirmed(self._channel(), exchange, routing_key, envelope, headers, self._user)

    # --- consuming ---
    async def consume(self, queue: str, handler: Handler) -> None:
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        amqp_queue = await channel.get_queue(queue, ensure=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._inflight.track(task)
            await self._on_message(queue, handler, message)

        tag = await amqp_queue.consume(on_message, no_ack=False)
        self._consumers.append((amqp_queue, tag, channel))

    async def stop_consuming(self, grace_s: float) -> None:
        consumers, self._consumers = self._consumers, []
        for queue, tag, _ in consumers:
            try:
                await queue.cancel(tag)
            except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                log_event(log, "cancel-failed", logging.WARNING, queue=queue.name, error=str(exc))
        await self._inflight.drain(grace_s)
        for coalescer in list(self._ack_coalescers.values()):
            with suppress(Exception):  # a closed link: the broker redelivers instead
                await coalescer.close()
        for _, _, channel in consumers:
            if not channel.is_closed:
                await channel.close()

    def _acks_for(self, channel: aiormq.abc.AbstractChannel) -> AckCoalescer:
        # Delivery tags belong to one channel: a reconnect brings a new channel and new tags.
        coalescer = self._ack_coalescers.get(channel)
        if coalescer is None:
            coalescer = self._ack_coalescers[channel] = AckCoalescer(channel)
        return coalescer

    async def _on_message(
        self, queue: str, handler: Handler, message: AbstractIncomingMessage
    ) -> None:
        acks, tag = self._acks_for(message.channel), message.delivery_tag or 0
        acks.received(tag)
        spec = self.specs.get(queue)
        plain = spec is not None and spec.plain_messages
        try:
            if not (plain and message.exchange == topo.INBOUND) and message.user_id != self._user:
                raise NotPublishedByTheHubError(message.user_id or "(no user_id)")
            delivery = delivery_of(queue, message, plain)
        except Exception as exc:  # a foreign or corrupt message: keep it, in the dead queue
            log_event(log, "undecodable", logging.ERROR, queue=queue, error=type(exc).__name__)
            acks.settle(tag, Settlement.DROP)
            return
        try:
            outcome = await self._run_handler(handler, delivery)
            await self._settle(delivery, outcome)
            await self._handled_and_settled()
        except asyncio.CancelledError:
            acks.abandon(tag)  # shutting down: unacked, the broker delivers it again
            raise
        except Exception as exc:  # the retry or dead-letter copy was not confirmed
            log_event(
                log,
                "settle-failed",
                logging.WARNING,
                queue=queue,
                message_id=delivery.envelope.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            acks.settle(tag, Settlement.REQUEUE)  # if the link is gone, the broker requeues it
            return
        acks.settle(tag)

    async def _settle(self, delivery: Delivery, outcome: Disposition) -> None:
        """Move a failed delivery to its retry or dead queue; confirmed before the ack."""
        if outcome.verdict is Verdict.ACK:
            return
        headers: dict[str, Any] = {
            topo.H_ROUTING_KEY: delivery.routing_key,
            topo.H_ERROR_CLASS: outcome.error_class,
            topo.H_ERROR: outcome.error,
        }
        if outcome.verdict is Verdict.RETRY:
            headers[topo.H_ATTEMPT] = delivery.attempt + 1
            key = topo.requeue_key(topo.retry_tier(outcome.delay_s), delivery.queue)
            await self._publish_direct(topo.RETRY, key, delivery.envelope, headers)
            return
        headers[topo.H_ATTEMPT] = delivery.attempt
        headers[topo.H_DEAD_AT] = datetime.now(UTC).isoformat()
        await self._publish_direct(topo.DEAD, delivery.queue, delivery.envelope, headers)

    # --- dead letters and operations ---
    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        async with self._browse(topo.dead_queue_name(queue)) as messages:
            async for message in messages:
                found.append(dead_letter_of(queue, message))
                if len(found) >= limit:
                    break
        return found

    async def redrive(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        wanted = set(message_ids) if message_ids is not None else None
        moved = 0
        async with self._browse(topo.dead_queue_name(queue)) as messages:
            async for message in messages:
                dead = dead_letter_of(queue, message)
                if wanted is not None and dead.envelope.id not in wanted:
                    continue
                headers = {topo.H_ROUTING_KEY: dead.routing_key, topo.H_ATTEMPT: 1}
                key = topo.requeue_key(topo.REDRIVE_TIER, queue)
                await self._publish_direct(topo.REQUEUE, key, dead.envelope, headers)
                await message.ack()  # only after the republish was confirmed
                moved += 1
        log_event(log, "redriven", queue=queue, count=moved)
        return moved

    @asynccontextmanager
    async def _browse(
        self, queue_name: str
    ) -> AsyncIterator[AsyncIterator[AbstractIncomingMessage]]:
        """Yield each message of a queue once, unacked; whatever is not acked goes back on close.

        Messages are held, not returned one by one, so the broker cannot hand the same one back
        within one pass; the pass is bounded by the depth seen at its start.
        """
        channel = await self.connection.channel()
        try:
            try:
                queue = await channel.declare_queue(queue_name, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity as exc:
                raise TopologyError(f"queue {queue_name!r} does not exist") from exc
            depth = queue.declaration_result.message_count or 0

            async def messages() -> AsyncIterator[AbstractIncomingMessage]:
                for _ in range(depth):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        return
                    yield message

            yield messages()
        finally:
            if not channel.is_closed:
                await channel.close()

    async def depths(self) -> list[QueueDepth]:
        channel = await self.connection.channel()
        try:
            result = []
            for name in self.specs:
                ready = await channel.declare_queue(name, passive=True)
                dead = await channel.declare_queue(topo.dead_queue_name(name), passive=True)
                result.append(
                    QueueDepth(
                        name,
                        ready.declaration_result.message_count or 0,
                        dead.declaration_result.message_count or 0,
                    )
                )
            return result
        finally:
            await channel.close()
