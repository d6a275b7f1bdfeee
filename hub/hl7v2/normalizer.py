"""The normalizer worker: consumes ``hl7v2.*.*`` from the inbound exchange, maps each message to
FHIR and writes the resources in one store transaction, then records the outcome on the
archived message (stored with the resources it produced, unmapped, or failed with why)."""

import asyncio
import logging
from typing import Protocol

from hub.base.envelope import Envelope
from hub.base.errors import JianhuError, MappingError, PermanentError, RetryableError, StoreError
from hub.base.logs import log_event
from hub.bus.base import Delivery, Handler
from hub.hl7v2 import application_ack
from hub.hl7v2.application_ack import Requester
from hub.hl7v2.mapping import UnmappedMessageError, normalize
from hub.hl7v2.message import HL7ParseError, Message, head
from hub.hl7v2.offload import BIG_MESSAGE_CHARS, BigMessages
from hub.hl7v2.persist import persist
from hub.hl7v2.privacy import mask_personal
from hub.hl7v2.processed import announce
from hub.hl7v2.publishing import message_text
from store.archive import FAILED, PROCESSED, STORED, UNMAPPED, ArchivedMessage, MessageArchive
from store.resources import ResourceStore

log = logging.getLogger(__name__)
# Past this many segments, mapping and index extraction run in a worker thread, so the event
# loop is not held for the tenths of a second they take; past ``BIG_MESSAGE_CHARS`` the whole
# message goes to a worker process (``hub.hl7v2.offload``). A routine message is quicker done
# in place.
THREAD_SEGMENTS = 500


class Services(Requester, Protocol):
    @property
    def resources(self) -> ResourceStore: ...

    @property
    def archive(self) -> MessageArchive: ...

    @property
    def big_messages(self) -> BigMessages: ...


def normalizer(services: Services) -> Handler:
    # Two deliveries of one attempt (a publish repeated after a crash, next to the original)
    # can be handed out at once: the second waits for the first here, then finds it done.
    running: dict[str, asyncio.Event] = {}

    async def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        archive_id = envelope.headers.get("archive-id", "")
        if not archive_id:  # not from the archive (published by other means): nothing to check
            await _normalize(services, envelope, archive_id)
            return
        key = f"{archive_id}/{envelope.headers.get('attempt', '1')}"
        while (first := running.get(key)) is not None:
            await first.wait()
        running[key] = mine = asyncio.Event()
        try:
            archived = await _archived(services.archive, archive_id)
            if not _done_before(archived, envelope):
                await _normalize(services, envelope, archive_id, archived)
            elif archived is not None and archived.status in PROCESSED:
                await announce(services.bus, archive_id, envelope)  # its notice may be lost
        finally:
            del running[key]
            mine.set()

    return handle


async def _normalize(
    services: Services,
    envelope: Envelope,
    archive_id: str,
    archived: ArchivedMessage | None = None,
) -> None:
    text = await message_text(envelope, services.archive, archived)
    charset = envelope.headers.get("charset", "utf-8")
    big = len(text) > BIG_MESSAGE_CHARS
    try:  # of a big message only its head here (the ACK and the masking need no more)
        message = Message(head(text) if big else text, charset)
    except HL7ParseError as exc:  # the listener parsed it before: only a damaged replay
        await _record(services, archive_id, FAILED, str(exc))
        raise PermanentError(f"cannot read the message: {exc}") from exc
    try:
        if big:
            produced = await services.big_messages.normalize(text, charset)
        else:
            medium = len(message.segments) > THREAD_SEGMENTS
            mapped = await asyncio.to_thread(normalize, message) if medium else normalize(message)
            produced = await persist(services.resources, mapped, offload=medium)
    except UnmappedMessageError as exc:
        # no FHIR of its own; the lab reads the LIS's status messages from its own queue
        await _record(services, archive_id, UNMAPPED, str(exc))
        await application_ack.request(services, envelope, message)
        await announce(services.bus, archive_id, envelope)
        return
    except MappingError as exc:  # the message itself is wrong, or a merge it asks for
        reason = mask_personal(str(exc), message)
        await _record(services, archive_id, FAILED, reason)
        await application_ack.request(services, envelope, message, reason)
        raise PermanentError(f"cannot map the message: {reason}") from exc
    except JianhuError:
        raise  # the hub's own errors name no patient
    except Exception as exc:  # a failure of the hub's, not the message's: retried by the bus
        reason = mask_personal(f"{type(exc).__name__}: {exc}", message)
        log_event(
            log, "normalize_failed", logging.ERROR, exc_info=True, archive_id=archive_id,
            reason=reason,
        )  # fmt: skip
        raise RetryableError(reason) from exc
    await _record(services, archive_id, STORED, "", produced)
    await application_ack.request(services, envelope, message)
    await announce(services.bus, archive_id, envelope)


async def _archived(archive: MessageArchive, archive_id: str) -> ArchivedMessage | None:
    try:
        return await archive.get(archive_id)
    except StoreError:
        return None  # not in this archive (a message published by other means)


def _done_before(archived: ArchivedMessage | None, envelope: Envelope) -> bool:
    """Whether this attempt was processed already, or a later attempt replaced it: a message
    published twice (its publish mark lost in a crash, then recovered) is processed once."""
    attempt = int(envelope.headers.get("attempt", "1") or 1)
    if archived is None:
        return False  # not from this archive: process it
    if archived.attempts > attempt or (
        archived.attempts == attempt and archived.status in PROCESSED
    ):
        log_event(
            log,
            "already_processed",
            archive_id=archived.id,
            attempt=attempt,
            status=archived.status,
        )
        return True
    return False


async def _record(
    services: Services, archive_id: str, status: str, error: str, produced: list[str] | None = None
) -> None:
    if archive_id:
        await services.archive.set_status(
            archive_id, status, error, resources=produced or (), processed=True
        )
