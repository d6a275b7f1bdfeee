"""The normalizer worker: consumes ``hl7v2.#`` from the inbound exchange, maps each message to
FHIR and writes the resources in one store transaction, then records the outcome on the
archived message (stored with the resources it produced, unmapped, or failed with why)."""

import asyncio
import logging
from typing import Protocol

from hub.bus.base import Delivery, Handler
from hub.envelope import Envelope
from hub.errors import JianhuError, PermanentError, RetryableError, StoreError
from hub.hl7v2 import application_ack
from hub.hl7v2.application_ack import Requester
from hub.hl7v2.mapping import UnmappedMessageError, normalize
from hub.hl7v2.message import HL7ParseError, Message
from hub.hl7v2.persist import persist
from hub.hl7v2.privacy import mask_personal
from hub.logs import log_event
from store.archive import FAILED, PROCESSED, STORED, UNMAPPED, MessageArchive
from store.resources import ResourceStore

log = logging.getLogger(__name__)
# Past this many segments, mapping and index extraction run in a worker thread: a result
# message of 50,000 OBX takes seconds of CPU that must not hold the event loop (the thread
# yields it every few milliseconds), while a routine message is quicker done in place.
THREAD_SEGMENTS = 500


class Services(Requester, Protocol):
    @property
    def resources(self) -> ResourceStore: ...

    @property
    def archive(self) -> MessageArchive: ...


def normalizer(services: Services) -> Handler:
    async def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        archive_id = envelope.headers.get("archive-id", "")
        if archive_id and await _done_before(services.archive, archive_id, envelope):
            return
        try:
            message = Message(envelope.body.decode(), envelope.headers.get("charset", "utf-8"))
        except HL7ParseError as exc:  # the listener parsed it before: only a damaged replay
            await _record(services, archive_id, FAILED, str(exc))
            raise PermanentError(f"cannot read the message: {exc}") from exc
        try:
            big = len(message.segments) > THREAD_SEGMENTS
            mapped = await asyncio.to_thread(normalize, message) if big else normalize(message)
            produced = await persist(services.resources, mapped, offload=big)
        except UnmappedMessageError as exc:
            # no FHIR of its own; the lab reads the LIS's status messages from its own queue
            await _record(services, archive_id, UNMAPPED, str(exc))
            await application_ack.request(services, envelope, message)
            return
        except ValueError as exc:  # the message itself is wrong, or a merge it asks for
            reason = mask_personal(str(exc), message)
            await _record(services, archive_id, FAILED, reason)
            await application_ack.request(services, envelope, message, reason)
            raise PermanentError(f"cannot map the message: {reason}") from exc
        except JianhuError:
            raise  # the hub's own errors name no patient
        except Exception as exc:  # retried by the bus; its reason is read by people
            reason = mask_personal(f"{type(exc).__name__}: {exc}", message)
            raise RetryableError(reason) from exc
        await _record(services, archive_id, STORED, "", produced)
        await application_ack.request(services, envelope, message)

    return handle


async def _done_before(archive: MessageArchive, archive_id: str, envelope: Envelope) -> bool:
    """Whether this attempt was processed already, or a later attempt replaced it: a message
    published twice (its publish mark lost in a crash, then recovered) is processed once."""
    attempt = int(envelope.headers.get("attempt", "1") or 1)
    try:
        archived = await archive.get(archive_id)
    except StoreError:
        return False  # not in this archive (a message published by other means): process it
    if archived.attempts > attempt or (
        archived.attempts == attempt and archived.status in PROCESSED
    ):
        log_event(
            log,
            "already_processed",
            archive_id=archive_id,
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
