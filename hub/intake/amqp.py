"""The AMQP intake (docs/amqp.md): a system publishes a plain message to ``jianhu.inbound`` with
routing key ``hl7v2`` (ER7, the type read from MSH-9) or ``fhir.<Type>`` / ``fhir.Bundle``
(FHIR JSON), and the hub takes it as it takes the same message over MLLP or HTTP.

Who sent it is its ``app_id``, checked against the configured senders together with the broker
user RabbitMQ vouches for (``user_id``). An HL7 v2 message goes through the MLLP listener's
ingest (check, archive, publish for the normalizer, ACK); a FHIR message through the FHIR API's
service, with the sender's scopes. With ``reply_to`` set the sender gets the ACK or the FHIR
response (an OperationOutcome when refused), with its ``correlation_id`` (or its ``message_id``).
A message the hub would not take is answered and dead-lettered with the reason; one it could
not take now (its archive or bus down) is retried, and answered once it is taken."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from hub.base.correlation import Origin, within
from hub.base.envelope import HL7V2_ER7
from hub.base.errors import PublishError, RetryableError
from hub.base.logs import log_event
from hub.bus.base import Bus, Delivery, PlainMessage
from hub.bus.outside import OutsideMessage, outside
from hub.fhir.scopes import Principal
from hub.hl7v2.ack import ack_outcome
from hub.hl7v2.ingest import Ingest
from hub.hl7v2.settings import ListenerSettings
from hub.intake.answers import (
    ACCEPTED,
    H_ARCHIVE_ID,
    H_OUTCOME,
    REFUSED,
    Answer,
    IntakeRefusedError,
    refused,
)
from hub.intake.fhir_messages import FhirIntake
from hub.intake.settings import HL7V2_KEY, AmqpIntakeSettings, AmqpSender

log = logging.getLogger(__name__)
QUEUE = "intake.amqp"
BINDINGS = (HL7V2_KEY, "fhir.*")
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to."
ER7_TYPES = (HL7V2_ER7, "text/plain", "application/hl7-v2")


@dataclass(frozen=True)
class AmqpIntake:
    settings: AmqpIntakeSettings
    bus: Bus
    ingest: Callable[[ListenerSettings], Ingest]  # the MLLP listener's ingest, for this sender
    fhir: FhirIntake

    async def __call__(self, delivery: Delivery) -> None:
        message = outside(delivery.envelope)
        if message is None:  # the hub's own envelope on a system's key: a bug, not a sender's
            what = f"{delivery.routing_key}: the keys hl7v2 and fhir.* are for systems' messages"
            raise IntakeRefusedError(what)
        answer = await self._answer(message, delivery)
        archive_id = answer.headers.get(H_ARCHIVE_ID, "")
        if archive_id:  # the message's line carries its correlation id: its archive id
            with within(Origin(archive_id, message.app_id)):
                await self._settle(message, delivery, answer)
        else:
            await self._settle(message, delivery, answer)

    async def _settle(self, message: OutsideMessage, delivery: Delivery, answer: Answer) -> None:
        """Log the outcome, answer, and refuse (dead-letter) what was not taken."""
        log_event(
            log,
            "amqp_message",
            logging.WARNING if answer.refusal else logging.INFO,
            sender=message.app_id,
            message_id=message.message_id,
            routing_key=delivery.routing_key,
            outcome=answer.headers.get(H_OUTCOME, ""),
            archive_id=answer.headers.get(H_ARCHIVE_ID, ""),
            reason=answer.refusal,
        )
        await self._reply(message, answer, self._verified(message))
        if answer.refusal:
            raise IntakeRefusedError(answer.refusal)

    async def _answer(self, message: OutsideMessage, delivery: Delivery) -> Answer:
        sender = self.settings.senders.get(message.app_id)
        if sender is None:
            unknown = f"unknown sender (app_id {message.app_id or 'not set'})"
            return refused(403, "security", unknown)
        if (refusal := _refusal(message, sender, delivery.routing_key)) is not None:
            return refusal
        body = delivery.envelope.body
        if delivery.routing_key == HL7V2_KEY:
            return await self._hl7(message, sender, body)
        principal = Principal.of("system", f"amqp:{message.app_id}", sender.scopes)
        return await self.fhir.take(message, body, delivery.routing_key, principal)

    async def _hl7(self, message: OutsideMessage, sender: AmqpSender, body: bytes) -> Answer:
        media_type = message.content_type.partition(";")[0].strip().lower()
        if media_type not in ER7_TYPES:
            text = f"content type {message.content_type or '(none)'}: send {HL7V2_ER7}"
            return refused(415, "not-supported", text)
        listener = self.settings.listener_for(message.app_id, sender)
        oversized = len(body) > listener.max_message_bytes  # answered AR, as over MLLP
        reply = await self.ingest(listener).handle(
            body, f"amqp:{message.user_id or message.app_id}", oversized
        )
        if reply.ack is None and reply.close:  # archive or bus down: nothing was taken
            raise RetryableError("the message could not be archived and published now")
        code, text = ack_outcome(reply.ack or "")
        headers = {H_OUTCOME: ACCEPTED if code in ("AA", "CA", "") else REFUSED}
        if reply.archive_id:
            headers[H_ARCHIVE_ID] = reply.archive_id
        refusal = "" if headers[H_OUTCOME] == ACCEPTED else f"{code}: {text or 'refused'}"
        ack = (reply.ack or "").encode(reply.charset, errors="replace")
        return Answer(ack, f"{HL7V2_ER7}; charset={reply.charset}", headers, refusal)

    async def _reply(
        self, message: OutsideMessage, answer: Answer, sender: AmqpSender | None
    ) -> None:
        if not message.reply_to or not answer.body:
            return  # no answer asked for (or MSH-15 NE: none wanted)
        owned = sender.may_reply_to(message.app_id, message.reply_to) if sender else False
        # a sender nobody vouches for is answered only on RabbitMQ's direct reply-to, which
        # only the connection that asked can read
        if not owned and not message.reply_to.startswith(DIRECT_REPLY_TO):
            # not to a queue it does not own: the answer would forge one for another system
            log_event(
                log,
                "reply_refused",
                logging.WARNING,
                sender=message.app_id,
                message_id=message.message_id,
                reply_to=message.reply_to,
            )
            return
        reply = PlainMessage(
            answer.body,
            answer.content_type,
            message.correlation_id or message.message_id,
            answer.headers,
        )
        try:
            await self.bus.reply(message.reply_to, reply)
        except PublishError as exc:  # the asker's queue is gone: what it sent is still taken
            log_event(
                log,
                "reply_failed",
                logging.WARNING,
                sender=message.app_id,
                message_id=message.message_id,
                error=str(exc),
            )

    def _verified(self, message: OutsideMessage) -> AmqpSender | None:
        """The configured sender of the message, when its broker user vouches for it."""
        sender = self.settings.senders.get(message.app_id)
        if sender is None or (sender.users and message.user_id not in sender.users):
            return None
        return sender


def _refusal(message: OutsideMessage, sender: AmqpSender, key: str) -> Answer | None:
    if sender.users and not message.user_id:
        text = f"{message.app_id} must set user_id (its broker user, which RabbitMQ checks)"
        return refused(403, "security", text)
    if sender.users and message.user_id not in sender.users:
        text = f"{message.app_id} does not publish as user {message.user_id}"
        return refused(403, "security", text)
    if not sender.accepts_key(key):
        return refused(403, "forbidden", f"{message.app_id} may not publish with key {key}")
    return None
