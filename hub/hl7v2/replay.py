"""Replaying archived messages: each replay is a new attempt at the same archived message (its
attempt count goes up and the envelope carries the archive id), so the link to the original
stays; the normalizer's ids make the replay update what the first attempt wrote."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hub.bus.base import Bus
from hub.bus.topology import INBOUND
from hub.envelope import HL7V2_ER7, Envelope
from hub.hl7v2.message import HL7ParseError, Message
from store.archive import ArchivedMessage, ArchiveQuery, MessageArchive


def summary(message: ArchivedMessage) -> dict[str, Any]:
    """What operations see in a list: no message content (it holds patient data)."""
    return {
        "id": message.id,
        "received_at": message.received_at.isoformat(),
        "sender": f"{message.sender_application}^{message.sender_facility}",
        "peer": message.peer,
        "type": message.message_type,
        "control_id": message.control_id,
        "status": message.status,
        "error": message.error,
        "attempts": message.attempts,
        "resources": len(message.resources),
    }


def detail(message: ArchivedMessage) -> dict[str, Any]:
    return summary(message) | {
        "charset": message.charset,
        "text": message.text,
        "ack": message.ack,
        "resources": list(message.resources),
    }


def archive_query(
    sender: str | None = None,
    message_type: str | None = None,
    status: str | None = None,
    control_id: str | None = None,
    patient_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> ArchiveQuery:
    return ArchiveQuery(
        sender_application=sender,
        message_type=message_type,
        status=status,
        control_id=control_id,
        patient_id=patient_id,
        received_from=since,
        received_to=until,
        limit=limit,
    )


async def replay(bus: Bus, archive: MessageArchive, messages: Sequence[ArchivedMessage]) -> int:
    replayed = 0
    for message in messages:
        try:
            parsed = Message(message.text, message.charset)
        except HL7ParseError:
            continue  # refused at the door: there is nothing to map
        code, event, _ = parsed.message_type
        attempt = await archive.new_attempt(message.id)
        envelope = Envelope(
            type=f"hl7v2.{code}.{event}",
            source=message.sender_application or message.peer,
            content_type=HL7V2_ER7,
            body=message.text.encode(),
            correlation_id=message.id,
            headers={"archive-id": message.id, "charset": message.charset, "attempt": str(attempt)},
        )
        await bus.publish(envelope, f"hl7v2.{code}.{event}", INBOUND)
        replayed += 1
    return replayed
