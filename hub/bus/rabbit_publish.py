"""Publishing on RabbitMQ (``hub.bus.rabbit``): one message, confirmed by the broker, and every
aio-pika and aiormq failure mapped to the hub's own most specific error."""

from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel
from aio_pika.exceptions import DeliveryError
from pamqp.commands import Basic

from hub.base.envelope import Envelope
from hub.base.errors import PublishError, TopologyError, UnroutableError
from hub.bus.base import PlainMessage
from hub.bus.rabbit_messages import plain_properties, to_properties


async def confirmed(
    channel: AbstractChannel,
    exchange: str,
    routing_key: str,
    envelope: Envelope,
    headers: dict[str, Any] | None = None,
    user_id: str | None = None,
) -> None:
    """Publish an envelope and wait for the broker's confirm."""
    properties = to_properties(envelope, headers, user_id)
    what = f"publish {envelope.id} to {exchange}/{routing_key}"
    await _published(channel, envelope.to_json(), exchange, routing_key, properties, what)


async def confirmed_plain(
    channel: AbstractChannel, exchange: str, routing_key: str, message: PlainMessage
) -> None:
    """A plain message for a system, confirmed by the broker."""
    what = f"publish a plain message to {exchange}/{routing_key}"
    await _published(channel, message.body, exchange, routing_key, plain_properties(message), what)


async def send_reply(channel: AbstractChannel, reply_to: str, answer: PlainMessage) -> None:
    """An answer to a system, on the default exchange (its routing key is the asker's queue),
    on a channel without confirms: written, not waited for (``Bus.reply``)."""
    what = f"reply {answer.correlation_id or '(no correlation id)'} to {reply_to}"
    properties = plain_properties(answer)
    await _published(channel, answer.body, "", reply_to, properties, what, mandatory=False)


async def _published(
    channel: AbstractChannel,
    body: bytes,
    exchange: str,
    routing_key: str,
    properties: Basic.Properties,
    what: str,
    mandatory: bool = True,
) -> None:
    """One mandatory publish, confirmed; failures as the hub's own errors. Plain coroutines
    straight to the channel underneath: this is the per-message hot path."""
    try:
        if channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("the publishing channel is closed")
        underlay = await channel.get_underlay_channel()
        await underlay.basic_publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            properties=properties,
            mandatory=mandatory,
        )
    except Exception as exc:
        raise publish_error(exc, what) from exc


def publish_error(exc: Exception, what: str) -> Exception:
    if isinstance(exc, DeliveryError):
        if type(getattr(exc, "frame", None)).__name__ == "Return":
            return UnroutableError(f"{what}: no queue is bound for this routing key")
        return PublishError(f"{what}: the broker refused the message")
    if isinstance(exc, aiormq.exceptions.ChannelNotFoundEntity):
        return TopologyError(f"{what}: {exc}")
    if isinstance(exc, TimeoutError | aiormq.exceptions.AMQPError | ConnectionError):
        return PublishError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, RuntimeError):  # aio-pika's "channel/connection closed" while reconnecting
        return PublishError(f"{what}: the link to RabbitMQ is down ({exc})")
    return exc
