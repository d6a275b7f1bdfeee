"""Replaying archived messages: each replay is a new attempt at the same archived message (its
attempt count goes up and the envelope carries the archive id), so the link to the original
stays; the normalizer's ids make the replay update what the first attempt wrote."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from hub.base.errors import PublishError
from hub.base.hospital_time import shown
from hub.hl7v2.message import HL7ParseError, Message
from hub.hl7v2.publishing import Publisher
from store.archive import ArchivedMessage, ArchiveQuery


def summary(message: ArchivedMessage) -> dict[str, Any]:
    """What operations see in a list: no message content (it holds patient data)."""
    return {
        "id": message.id,
        "received_at": shown(message.received_at),
        "sender": f"{message.sender_application}^{message.sender_facility}",
        "peer": message.peer,
        "type": message.message_type,
        "control_id": message.control_id,
        "status": message.status,
        "error": message.error,
        "attempts": message.attempts,
        "processings": message.processings,
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


async def replay(publisher: Publisher, messages: Sequence[ArchivedMessage]) -> int:
    replayed = 0
    for message in messages:
        try:
            Message(message.text, message.charset)
        except HL7ParseError:
            continue  # refused at the door: there is nothing to map
        attempt = await publisher.archive.new_attempt(message.id, publisher.claimant)
        if not await publisher.publish(replace(message, attempts=attempt)):
            raise PublishError(f"replay of {message.id} was not published; nothing after it was")
        replayed += 1
    return replayed
