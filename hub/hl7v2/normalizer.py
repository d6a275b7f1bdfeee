"""The normalizer worker: consumes ``hl7v2.#`` from the inbound exchange, maps each message to
FHIR and writes the resources in one store transaction, then records the outcome on the
archived message (stored with the resources it produced, unmapped, or failed with why)."""

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from hub.bus.base import Delivery, Handler
from hub.errors import PermanentError
from hub.hl7v2 import application_ack
from hub.hl7v2.application_ack import Requester
from hub.hl7v2.mapping import Mapped, UnmappedMessageError, normalize
from hub.hl7v2.message import HL7ParseError, Message
from hub.hl7v2.persist import persist
from hub.logs import log_event
from store.archive import FAILED, STORED, UNMAPPED, MessageArchive
from store.resources import ResourceStore

# Told about each message once its resources are stored (the lab screen); None: nobody listens.
AfterStore = Callable[[Message, Mapped], Awaitable[None]]

log = logging.getLogger(__name__)


class Services(Requester, Protocol):
    @property
    def resources(self) -> ResourceStore: ...

    @property
    def archive(self) -> MessageArchive: ...

    @property
    def after_store(self) -> AfterStore | None: ...


def normalizer(services: Services) -> Handler:
    async def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        archive_id = envelope.headers.get("archive-id", "")
        try:
            message = Message(envelope.body.decode(), envelope.headers.get("charset", "utf-8"))
        except HL7ParseError as exc:  # the listener parsed it before: only a damaged replay
            await _record(services, archive_id, FAILED, str(exc))
            raise PermanentError(f"cannot read the message: {exc}") from exc
        try:
            mapped = normalize(message)
            produced = await persist(services.resources, mapped)
        except UnmappedMessageError as exc:
            await _record(services, archive_id, UNMAPPED, str(exc))
            # no FHIR of its own, but listeners may read it (the LIS's SSU^U03 status updates)
            await _after_store(services, message, Mapped())
            await application_ack.request(services, envelope, message)
            return
        except ValueError as exc:  # the message itself is wrong, or a merge it asks for
            await _record(services, archive_id, FAILED, str(exc))
            await application_ack.request(services, envelope, message, str(exc))
            raise PermanentError(f"cannot map the message: {exc}") from exc
        await _record(services, archive_id, STORED, "", produced)
        await _after_store(services, message, mapped)
        await application_ack.request(services, envelope, message)

    return handle


async def _after_store(services: Services, message: Message, mapped: Mapped) -> None:
    """A listener's failure must not retry a message that is stored: it is logged, not raised."""
    listener = services.after_store
    if listener is None:
        return
    try:
        await listener(message, mapped)
    except Exception as exc:
        log_event(log, "after_store_failed", logging.ERROR, error=type(exc).__name__)


async def _record(
    services: Services, archive_id: str, status: str, error: str, produced: list[str] | None = None
) -> None:
    if archive_id:
        await services.archive.set_status(archive_id, status, error, resources=produced or ())
