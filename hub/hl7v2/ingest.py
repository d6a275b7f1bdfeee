"""The ingest path of one message: decode, read the header, check it, catch duplicates,
archive, publish, acknowledge. An AA (or CA) goes back only after the raw message is in the
archive and the bus confirmed its publish; when either fails the sender gets no ACK and the
connection closes, so it sends again (as the Google MLLP adapter does)."""

import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.bus.base import Bus
from hub.bus.topology import INBOUND
from hub.envelope import HL7V2_ER7, Envelope, new_id
from hub.hl7v2 import ack as acks
from hub.hl7v2.ack import Problem, build_ack, enhanced_mode
from hub.hl7v2.charset import decode
from hub.hl7v2.message import HL7ParseError, Message
from hub.logs import log_event
from hub.settings import ListenerSettings
from store.archive import REJECTED, ArchivedMessage, MessageArchive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    ack: str | None  # None: say nothing (MSH-15 NE) or, with ``close``, fail the connection
    close: bool = False
    charset: str = "utf-8"  # the ACK goes back in the character set the message came in


def routing_key(message: Message) -> str:
    code, event, _ = message.message_type
    return f"hl7v2.{code}.{event}"


async def publish_archived(
    bus: Bus, message: Message, text: str, archive_id: str, source: str, attempt: int = 1
) -> None:
    """Put an archived message on the inbound exchange for the normalizer; the envelope
    carries the archive id, so every attempt stays linked to the original."""
    envelope = Envelope(
        type=routing_key(message),
        source=source,
        content_type=HL7V2_ER7,
        body=text.encode(),
        correlation_id=archive_id,
        headers={"archive-id": archive_id, "charset": message.charset, "attempt": str(attempt)},
    )
    await bus.publish(envelope, routing_key(message), INBOUND)


class Ingest:
    def __init__(
        self,
        bus: Bus,
        archive: MessageArchive,
        settings: ListenerSettings,
        message_types: tuple[str, ...],
    ) -> None:
        self.bus, self.archive, self.settings = bus, archive, settings
        self.message_types = frozenset(message_types)
        self._networks = [ipaddress.ip_network(p, strict=False) for p in settings.allowed_peers]

    async def handle(self, raw: bytes, peer: str, oversized: bool = False) -> Answer:
        decoded = decode(raw, self.settings)
        try:
            message = Message(decoded.text, decoded.charset)
        except HL7ParseError as exc:
            await self._archive_refused(raw, decoded.text, decoded.charset, peer, str(exc))
            unreadable = Problem(acks.SEGMENT_SEQUENCE_ERROR, str(exc))
            return Answer(build_ack(None, "AE", unreadable), charset=decoded.charset)
        if oversized:
            text = f"the message is over {self.settings.max_message_bytes} bytes"
            too_big = Problem(acks.APPLICATION_INTERNAL_ERROR, text)
            return Answer(build_ack(message, "AR", too_big), True, decoded.charset)
        problem, code = self._refusal(message, peer, decoded.lossy)
        if problem is not None:
            await self._archive_refused(
                raw, decoded.text, decoded.charset, peer, problem.text, message
            )
            return self._answer(message, code, problem)
        duplicate = await self.archive.find_duplicate(
            *message.sender,
            message.control_id,
            datetime.now(UTC) - timedelta(seconds=self.settings.duplicate_window_s),
        )
        if duplicate is not None and duplicate.ack:
            log_event(
                log, "duplicate", archive_id=duplicate.id, message_type=duplicate.message_type
            )
            return Answer(duplicate.ack, charset=duplicate.charset)
        return await self._accept(message, raw, decoded.text, decoded.charset, peer, duplicate)

    def _refusal(self, message: Message, peer: str, lossy: bool) -> tuple[Problem | None, str]:
        code, event, _ = message.message_type
        if not self._peer_allowed(peer) or not self._sender_allowed(message):
            return Problem(acks.APPLICATION_INTERNAL_ERROR, "unknown sender", "MSH", 1, 3), "AR"
        if not message.control_id:
            return Problem(acks.REQUIRED_FIELD_MISSING, "MSH-10 is empty", "MSH", 1, 10), "AE"
        if message.processing_id[:1] != self.settings.processing_id:
            text = f"this interface takes processing id {self.settings.processing_id}"
            return Problem(acks.UNSUPPORTED_PROCESSING_ID, text, "MSH", 1, 11), "AR"
        if f"{code}^{event}" not in self.message_types:
            known = {t.split("^")[0] for t in self.message_types}
            error = acks.UNSUPPORTED_EVENT_CODE if code in known else acks.UNSUPPORTED_MESSAGE_TYPE
            return Problem(error, f"{code}^{event} is not taken here", "MSH", 1, 9), "AR"
        if lossy:
            charsets = f"{self.settings.charset} or {self.settings.fallback_charset}"
            text = f"the message is not valid {charsets}"
            return Problem(acks.DATA_TYPE_ERROR, text, "MSH", 1, 18), "AE"
        return None, "AA"

    def _peer_allowed(self, peer: str) -> bool:
        if not self._networks:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def _sender_allowed(self, message: Message) -> bool:
        if not self.settings.allowed_senders:
            return True
        application, facility = message.sender
        return application in self.settings.allowed_senders or (
            f"{application}^{facility}" in self.settings.allowed_senders
        )

    def _answer(self, message: Message, code: str, problem: Problem | None) -> Answer:
        """Original mode as is; enhanced mode answers with C* codes as MSH-15 asks."""
        if not enhanced_mode(message):
            return Answer(build_ack(message, code, problem), charset=message.charset)
        wanted = message.msh.value(15) or "AL"
        enhanced = {"AA": "CA", "AE": "CE", "AR": "CR"}[code]
        if wanted == "NE" or (wanted == "ER" and code == "AA") or (wanted == "SU" and code != "AA"):
            return Answer(None)
        return Answer(build_ack(message, enhanced, problem), charset=message.charset)

    async def _accept(
        self,
        message: Message,
        raw: bytes,
        text: str,
        charset: str,
        peer: str,
        earlier: ArchivedMessage | None,
    ) -> Answer:
        answer = self._answer(message, "AA", None)
        try:
            if earlier is None:
                archived = _archived(message, raw, text, charset, peer)
                await self.archive.add(archived)
                archive_id, attempt = archived.id, 1
            else:  # sent before but never acknowledged: the same message, a new attempt
                archive_id = earlier.id
                attempt = await self.archive.new_attempt(archive_id)
            source = message.sender[0] or peer
            await publish_archived(self.bus, message, text, archive_id, source, attempt)
            # archived and published: the ACK need not wait for this mark to be durable
            await self.archive.mark_published(archive_id, answer.ack or "", wait=False)
        except Exception as exc:  # archive or bus down: no ACK, the sender resends
            log_event(log, "ingest_failed", level=logging.ERROR, error=type(exc).__name__)
            return Answer(None, close=True)
        return answer

    async def _archive_refused(
        self,
        raw: bytes,
        text: str,
        charset: str,
        peer: str,
        error: str,
        message: Message | None = None,
    ) -> None:
        """Keep what could be read of a refused message, for the person who must look."""
        try:
            archived = _archived(message, raw, text, charset, peer)
            await self.archive.add(
                ArchivedMessage(**{**archived.__dict__, "status": REJECTED, "error": error})
            )
        except Exception as exc:
            log_event(log, "archive_failed", level=logging.ERROR, error=type(exc).__name__)


def _archived(
    message: Message | None, raw: bytes, text: str, charset: str, peer: str
) -> ArchivedMessage:
    application = facility = control = type_ = ""
    patients: tuple[str, ...] = ()
    if message is not None:
        application, facility = message.sender
        control = message.control_id
        code, event, _ = message.message_type
        type_ = f"{code}^{event}"
        pid = message.first("PID")
        if pid is not None:
            patients = tuple(
                value
                for rep in range(1, len(pid.repetitions(3)) + 1)
                if (value := pid.value(3, 1, repetition=rep))
            )
    return ArchivedMessage(
        id=new_id(),
        received_at=datetime.now(UTC),
        sender_application=application,
        sender_facility=facility,
        peer=peer,
        message_type=type_,
        control_id=control,
        charset=charset,
        raw=raw,
        text=text,
        status="received",
        patient_ids=patients,
    )
