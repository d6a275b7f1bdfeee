"""The normalizer worker: consumes ``hl7v2.#`` from the inbound exchange, maps each message to
FHIR and writes the resources in one store transaction, then records the outcome on the
archived message (stored with the resources it produced, unmapped, or failed with why)."""

from typing import Protocol

from hub.bus.base import Delivery, Handler
from hub.errors import PermanentError
from hub.hl7v2.mapping import UnmappedMessageError, normalize
from hub.hl7v2.message import HL7ParseError, Message
from hub.hl7v2.persist import persist
from store.archive import FAILED, STORED, UNMAPPED, MessageArchive
from store.resources import ResourceStore


class Services(Protocol):
    @property
    def resources(self) -> ResourceStore: ...

    @property
    def archive(self) -> MessageArchive: ...


def normalizer(services: Services) -> Handler:
    async def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        archive_id = envelope.headers.get("archive-id", "")
        try:
            message = Message(envelope.body.decode(), envelope.headers.get("charset", "utf-8"))
            mapped = normalize(message)
        except UnmappedMessageError as exc:
            await _record(services, archive_id, UNMAPPED, str(exc))
            return
        except (HL7ParseError, ValueError) as exc:  # the message itself is wrong: a person looks
            await _record(services, archive_id, FAILED, str(exc))
            raise PermanentError(f"cannot map the message: {exc}") from exc
        try:
            produced = await persist(services.resources, mapped)
        except ValueError as exc:  # a merge the store cannot carry out as asked
            await _record(services, archive_id, FAILED, str(exc))
            raise PermanentError(f"cannot store the message: {exc}") from exc
        await _record(services, archive_id, STORED, "", produced)

    return handle


async def _record(
    services: Services, archive_id: str, status: str, error: str, produced: list[str] | None = None
) -> None:
    if archive_id:
        await services.archive.set_status(archive_id, status, error, resources=produced or ())
