"""A system outside the hub on RabbitMQ, as a HIS or an LIS would be: it publishes plain
messages with ``pika`` (a client the hub does not use) and reads the hub's replies from a queue
of its own. Blocking, as pika's plain connection is: the tests call it through a thread."""

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

INBOUND = "jianhu.inbound"
ER7 = "x-application/hl7-v2+er7"
FHIR = "application/fhir+json"


@dataclass(frozen=True)
class Received:
    properties: Any  # pika.BasicProperties
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


class System:
    def __init__(self, url: str, app_id: str, user_id: str | None = "guest") -> None:
        self.app_id, self.user_id = app_id, user_id
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel: BlockingChannel = self.connection.channel()
        self.channel.confirm_delivery()  # basic_publish raises unless the broker took it
        # a reply queue named after the sender: the hub answers only to queues it may own
        reply_queue = f"{app_id}.replies.{uuid.uuid4().hex[:12]}"
        self.replies = self.channel.queue_declare(reply_queue, exclusive=True).method.queue

    def publish(
        self,
        key: str,
        body: bytes,
        message_id: str,
        content_type: str = FHIR,
        reply: bool = True,
        **properties: Any,
    ) -> None:
        self.channel.basic_publish(
            INBOUND,
            key,
            body,
            pika.BasicProperties(
                app_id=properties.pop("app_id", self.app_id),
                user_id=properties.pop("user_id", self.user_id),
                message_id=message_id,
                content_type=content_type,
                reply_to=properties.pop("reply_to", self.replies if reply else None),
                delivery_mode=2,
                **properties,
            ),
            mandatory=True,
        )

    def reply(self, timeout_s: float = 30.0) -> Received:
        """The next reply; waits for it on the queue (no polling), fails after ``timeout_s``."""
        # acked one by one: cancelling the consumer puts back what arrived meanwhile
        for method, properties, body in self.channel.consume(
            self.replies, auto_ack=False, inactivity_timeout=timeout_s
        ):
            if method is None:
                self.channel.cancel()
                raise AssertionError(f"no reply within {timeout_s} s")
            self.channel.basic_ack(method.delivery_tag)
            self.channel.cancel()
            return Received(properties, body)
        raise AssertionError("the reply queue closed")

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


async def ask(system: System, key: str, body: bytes, message_id: str, **kw: Any) -> Received:
    """Publish and wait for the hub's reply."""
    await asyncio.to_thread(system.publish, key, body, message_id, **kw)
    return await asyncio.to_thread(system.reply)
