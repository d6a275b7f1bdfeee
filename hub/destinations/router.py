"""The router: for each message taken into the store (``hub.hl7v2.processed``), the destinations
whose filter it passes each get a delivery: recorded in the delivery ledger first (adapter
``destination``, interface = the destination, business key = the patient, the archive id as
its correlation), then put on the destination's own queue. A notice seen again (a redelivery,
or a message processed before) adds no second delivery: what the ledger holds for the message
is only re-queued while it is still pending."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from hub.base.envelope import Envelope, new_id
from hub.base.errors import (
    PermanentError,
    ResourceGoneError,
    ResourceNotFoundError,
    StoreError,
)
from hub.bus.base import Bus, Delivery
from hub.bus.topology import INBOUND
from hub.destinations.config import Destination, HttpTransport
from hub.destinations.selection import Facts, facts_of, selected, transformed
from hub.hl7v2.message import HL7ParseError
from store.archive import ArchivedMessage, MessageArchive
from store.ledger import PENDING, Ledger, LedgerQuery, Submission
from store.resources import ResourceStore

ADAPTER = "destination"  # the ledger's adapter name of every destination's deliveries
QUEUE = "destinations.router"


def delivery_key(destination: str) -> str:
    """The routing key of a destination's queue on the inbound exchange."""
    return f"destination.{destination}"


@dataclass(frozen=True)
class Router:
    destinations: Sequence[Destination]
    archive: MessageArchive
    resources: ResourceStore
    ledger: Ledger
    bus: Bus

    async def __call__(self, delivery: Delivery) -> None:
        archive_id = delivery.envelope.headers.get("archive-id", "")
        try:
            archived = await self.archive.get(archive_id)
        except StoreError as exc:  # purged meanwhile, or not this hub's
            raise PermanentError(f"no archived message {archive_id}") from exc
        text = archived.text  # the archive has every message whole, a big one too
        try:
            facts = facts_of(archive_id, text, archived.charset, archived.resources)
        except HL7ParseError as exc:
            raise PermanentError(f"cannot read message {archive_id}: {exc}") from exc
        earlier = await self.ledger.search(
            LedgerQuery(adapter=ADAPTER, correlation=archive_id, limit=len(self.destinations) + 1)
        )
        recorded = {s.interface: s for s in earlier}
        for destination in await selected(self.destinations, self.resources, facts):
            submission = recorded.get(destination.name)
            if submission is None:
                origin = delivery.envelope.headers.get("origin", "")
                submission = await self._record(destination, facts, archived, text, origin)
            elif submission.status != PENDING:
                continue  # on its way or done: its own queue has it
            await self.bus.publish(_queued(submission), delivery_key(destination.name), INBOUND)

    async def _record(
        self,
        destination: Destination,
        facts: Facts,
        archived: ArchivedMessage,
        text: str,
        origin: str,
    ) -> Submission:
        payload = await self._payload(destination, facts, text)
        now = datetime.now(UTC)
        submission = Submission(
            id=new_id(),
            adapter=ADAPTER,
            interface=destination.name,
            business_key=facts.patient,
            kind="upload",
            payload=payload,
            content_hash=hashlib.sha256(payload.encode()).hexdigest(),
            status=PENDING,
            created_at=now,
            updated_at=now,
            # the message first (its order among the patient's deliveries), then what led to it
            correlations=(archived.id, origin) if origin else (archived.id,),
        )
        await self.ledger.add(submission)
        return submission

    async def _payload(self, destination: Destination, facts: Facts, text: str) -> str:
        """What is sent: the message as transformed for the destination, or for a FHIR server
        the current versions of the resources it produced (a JSON list)."""
        if not isinstance(destination.transport, HttpTransport):
            return transformed(destination.transform, text, destination.name)
        bodies = []
        for path in facts.resources:
            type_, _, id_ = path.partition("/")
            try:
                current = await self.resources.read(type_, id_)
            except (ResourceGoneError, ResourceNotFoundError):
                continue  # merged away since: nothing of it to send
            if current.body is not None:
                bodies.append(orjson.Fragment(current.body))
        return orjson.dumps(bodies).decode()


def _queued(submission: Submission) -> Envelope:
    return Envelope(
        type=f"destination.{submission.interface}",
        source="hub",
        content_type="application/json",
        body=b"",
        correlation_id=submission.correlations[0] if submission.correlations else None,
        headers={"submission": submission.id, "destination": submission.interface},
    )
