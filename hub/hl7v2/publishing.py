"""Publishing archived messages for the normalizer, once: what every ingest path of a process
(the MLLP listeners, the HTTP intake, the recovery of stranded messages) shares.

A message is published by the process that claimed it in the archive. A copy of it that arrives
meanwhile (the same sender and control id on another connection) waits for that publish and
gets the same ACK; a copy that finds the claim abandoned (its process crashed, or its publish
failed) takes it over and publishes it with the same attempt number, which the normalizer
recognises if the first publish did get through.
"""

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from hub.base.envelope import HL7V2_ER7, Envelope, new_id
from hub.base.errors import RetryableError, StoreError
from hub.base.logs import log_event
from hub.bus.base import Bus
from hub.bus.topology import INBOUND
from store.archive import RECEIVED, ArchivedMessage, MessageArchive

log = logging.getLogger(__name__)
CLAIM_CHECK = "claim-check"  # header: the text is in the archive under ``archive-id``
CLAIM_CHECK_BYTES = 256 * 1024  # above this, a message travels as a claim check
# Polling another process's claim: first and longest pause between looks at the archive.
_FIRST_LOOK_S, _LONGEST_LOOK_S = 0.02, 0.25


def routing_key(message_type: str) -> str:
    """``ORU^R01`` -> ``hl7v2.ORU.R01``."""
    code, _, event = message_type.partition("^")
    return f"hl7v2.{code}.{event}"


async def publish_archived(bus: Bus, message: ArchivedMessage, attempt: int) -> None:
    """Put an archived message on the inbound exchange for the normalizer; the envelope
    carries the archive id and the attempt, so every attempt stays linked to the original.

    A message over CLAIM_CHECK_BYTES travels as a claim check: the envelope carries the archive
    id and no body, and its consumers read the text from the archive. A 50,000-OBX result is
    then written once (the archive), not once more per queue it is routed to, and no queue
    holds megabytes a broker or the embedded bus's writer would have to move first."""
    key = routing_key(message.message_type)
    headers = {"archive-id": message.id, "charset": message.charset, "attempt": str(attempt)}
    body = message.text.encode()
    if len(body) > CLAIM_CHECK_BYTES:
        headers[CLAIM_CHECK], body = "archive", b""
    envelope = Envelope(
        type=key,
        source=message.sender_application or message.peer,
        content_type=HL7V2_ER7,
        body=body,
        correlation_id=message.id,
        headers=headers,
    )
    await bus.publish(envelope, key, INBOUND)


async def message_text(
    envelope: Envelope, archive: MessageArchive, archived: ArchivedMessage | None = None
) -> str:
    """The HL7 text an inbound envelope carries, or that its claim check names (``archived``:
    that message, when the caller has read it already)."""
    if envelope.headers.get(CLAIM_CHECK) != "archive":
        return envelope.body.decode()
    archive_id = envelope.headers.get("archive-id", "")
    if archived is not None and archived.id == archive_id:
        return archived.text
    try:
        return (await archive.get(archive_id)).text
    except StoreError as exc:  # the archive unavailable, or the message purged since: the
        # retries tell one from the other, and a purged one ends in the dead letters
        raise RetryableError(f"cannot read the archived message {archive_id}: {exc}") from exc


class Publisher:
    def __init__(self, bus: Bus, archive: MessageArchive, claim_grace_s: float) -> None:
        self.bus, self.archive = bus, archive
        # who claims in the archive: the host and process, and this start of it
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self.claim_grace_s = claim_grace_s
        self._in_flight: dict[str, asyncio.Future[bool]] = {}

    def begin(self, archive_id: str) -> None:
        """Before the claim is filed: a copy that finds the claim waits for this publish."""
        self._in_flight[archive_id] = asyncio.get_running_loop().create_future()

    def abandon(self, archive_id: str) -> None:
        """The claim was not this process's (a resend) or could not be filed."""
        self._finish(archive_id, False)

    async def publish(self, message: ArchivedMessage) -> bool:
        """Publish a message this process claimed; True once the bus confirmed it."""
        if message.id not in self._in_flight:
            self.begin(message.id)
        try:
            await publish_archived(self.bus, message, message.attempts)
            # the ACK need not wait for this mark: a message left "received" by a crash is
            # published again, and the normalizer skips an attempt it has processed
            await self.archive.mark_published(message.id, wait=False)
        except Exception as exc:  # archive or bus down: no ACK, the sender resends
            log_event(
                log,
                "ingest_failed",
                level=logging.ERROR,
                sender=message.sender_application,
                control_id=message.control_id,
                archive_id=message.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            self._finish(message.id, False)
            return False
        self._finish(message.id, True)
        return True

    async def settle_resend(self, earlier: ArchivedMessage) -> bool:
        """A copy of a message claimed before and not yet published: True once it is
        published, by the process that claimed it or by this one taking it over."""
        deadline = asyncio.get_running_loop().time() + self.claim_grace_s
        pause = _FIRST_LOOK_S
        while True:
            publishing = self._in_flight.get(earlier.id)
            if publishing is not None:  # this process publishes it right now
                if await asyncio.shield(publishing):
                    return True
            else:
                self.begin(earlier.id)  # copies arriving meanwhile wait for this attempt
                stale_before = datetime.now(UTC) - timedelta(seconds=self.claim_grace_s)
                taken = await self.archive.take_over(earlier.id, self.claimant, stale_before)
                if taken is not None:
                    return await self.publish(taken)
                self.abandon(earlier.id)
                if await self._published(earlier.id):
                    return True
            if asyncio.get_running_loop().time() > deadline:
                return False  # no ACK: the sender sends again, and that copy will know
            await asyncio.sleep(pause)  # another process holds the claim: look again soon
            pause = min(pause * 2, _LONGEST_LOOK_S)

    async def _published(self, archive_id: str) -> bool:
        try:
            return (await self.archive.get(archive_id)).status != RECEIVED
        except StoreError:
            return False  # claimed by another process that has not filed it yet

    def _finish(self, archive_id: str, published: bool) -> None:
        future = self._in_flight.pop(archive_id, None)
        if future is not None and not future.done():
            future.set_result(published)
