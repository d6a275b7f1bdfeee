"""The notice that an archived message has been taken into the store (stored, or archived as a
type without a FHIR mapping): ``hub.hl7v2.processed`` on the inbound exchange, carrying the
archive id, for what must follow a message once its resources exist (the outbound destinations).
Published only where a queue takes it, after the archive records the outcome; a redelivery of a
message processed before publishes it again, so its readers take it at least once and
recognise a repeat by the archive id."""

from hub.base.envelope import Envelope
from hub.bus.base import Bus
from hub.bus.topology import INBOUND

PROCESSED_KEY = "hub.hl7v2.processed"


async def announce(bus: Bus, archive_id: str, envelope: Envelope) -> None:
    if not archive_id or not bus.queues_for(INBOUND, PROCESSED_KEY):
        return
    notice = envelope.caused("hub.hl7v2.processed", "application/json", b"")
    headers = {"archive-id": archive_id}
    if envelope.correlation_id and envelope.correlation_id != archive_id:
        # what led to the message (the FHIR request an order is made from): its trace goes on
        # to what the message leads to (the deliveries)
        headers["origin"] = envelope.correlation_id
    notice = notice.evolve(correlation_id=archive_id, headers=headers)
    await bus.publish(notice, PROCESSED_KEY, INBOUND)
