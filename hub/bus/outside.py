"""A message a system outside the hub published with a plain body (FHIR JSON, HL7 v2 ER7), no
hub envelope: what the bus makes of it, so its handler sees a delivery like any other.

The bus wraps it in an envelope of its own (a new id; the routing key as its type; the sender's
``app_id`` as its source) and keeps the AMQP properties a handler needs, and that the hub's
own envelope has no field for, as headers. The sender's ``correlation_id`` is one of them, not
the envelope's correlation id: that one is the hub's trace id, which the intake chooses (the
archive id of the message). A retry or a dead letter of the wrapped message is an ordinary
envelope, so both work as for the hub's own messages.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from hub.base.envelope import ContentType, Envelope

# headers of the wrapping envelope: the publisher's AMQP properties
H_MESSAGE_ID = "amqp-message-id"
H_APP_ID = "amqp-app-id"
H_USER_ID = "amqp-user-id"  # checked by RabbitMQ against the publishing connection's user
H_REPLY_TO = "amqp-reply-to"
H_CORRELATION_ID = "amqp-correlation-id"
H_CONTENT_TYPE = "amqp-content-type"
OUTSIDE = "outside"  # header: "1" on every wrapped message

_KNOWN_TYPES: Mapping[str, ContentType] = {
    "application/fhir+json": "application/fhir+json",
    "application/json": "application/json",
    "x-application/hl7-v2+er7": "x-application/hl7-v2+er7",
}


@dataclass(frozen=True)
class OutsideMessage:
    """What the publisher said about its message, read back from the wrapping envelope."""

    message_id: str
    app_id: str
    user_id: str
    reply_to: str
    correlation_id: str
    content_type: str  # as published (the envelope's is one the hub knows, or octet-stream)


def wrap(
    body: bytes,
    routing_key: str,
    *,
    content_type: str | None,
    message_id: str | None,
    app_id: str | None,
    user_id: str | None,
    reply_to: str | None,
    correlation_id: str | None,
) -> Envelope:
    properties = {
        H_MESSAGE_ID: message_id,
        H_APP_ID: app_id,
        H_USER_ID: user_id,
        H_REPLY_TO: reply_to,
        H_CORRELATION_ID: correlation_id,
        H_CONTENT_TYPE: content_type,
    }
    media_type = (content_type or "").partition(";")[0].strip().lower()
    return Envelope(
        type=routing_key,
        source=app_id or "",
        content_type=_KNOWN_TYPES.get(media_type, "application/octet-stream"),
        body=body,
        headers={OUTSIDE: "1"} | {name: value for name, value in properties.items() if value},
    )


def outside(envelope: Envelope) -> OutsideMessage | None:
    """The publisher's properties of a wrapped message; None for the hub's own envelopes."""
    headers = envelope.headers
    if headers.get(OUTSIDE) != "1":
        return None
    return OutsideMessage(
        message_id=headers.get(H_MESSAGE_ID, ""),
        app_id=headers.get(H_APP_ID, ""),
        user_id=headers.get(H_USER_ID, ""),
        reply_to=headers.get(H_REPLY_TO, ""),
        correlation_id=headers.get(H_CORRELATION_ID, ""),
        content_type=headers.get(H_CONTENT_TYPE, ""),
    )
