"""The ingest path of one message: decode, read the header, check it, claim it in the archive
(which recognises a resend), publish, acknowledge. An AA (or CA) goes back only after the raw
message is in the archive and the bus confirmed its publish; when either fails the sender gets
no ACK and the connection closes, so it sends again (as the Google MLLP adapter does). Every
refusal and failure leaves a log line naming the sender, the control id and the peer."""

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hub.base.correlation import Origin, within
from hub.base.envelope import new_id
from hub.base.logs import log_event
from hub.hl7v2 import ack as acks
from hub.hl7v2.ack import Problem, build_ack, enhanced_mode
from hub.hl7v2.charset import decode
from hub.hl7v2.mapping.required import missing
from hub.hl7v2.message import PARSE_OFF_LOOP_CHARS, HL7ParseError, Message, parse
from hub.hl7v2.publishing import Publisher
from hub.hl7v2.settings import ListenerSettings
from store.archive import RECEIVED, REJECTED, ArchivedMessage, ClaimKind, MessageArchive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AckReply:
    ack: str | None  # None: say nothing (MSH-15 NE) or, with ``close``, fail the connection
    close: bool = False
    charset: str = "utf-8"  # the ACK goes back in the character set the message came in
    archive_id: str = ""  # of the accepted message (or of the first copy, for a resend)


class Ingest:
    def __init__(
        self,
        publisher: Publisher,
        archive: MessageArchive,
        settings: ListenerSettings,
        message_types: tuple[str, ...],
    ) -> None:
        self.publisher, self.archive, self.settings = publisher, archive, settings
        self.message_types = frozenset(message_types)
        self._networks = [ipaddress.ip_network(p, strict=False) for p in settings.allowed_peers]

    async def handle(self, raw: bytes, peer: str, oversized: bool = False) -> AckReply:
        decoded = decode(raw, self.settings)
        try:
            message = await parse(decoded.text, decoded.charset)
        except HL7ParseError as exc:
            _log_refusal(None, peer, "AE", str(exc))
            await self._archive_refused(raw, decoded.text, decoded.charset, peer, str(exc))
            unreadable = Problem(acks.SEGMENT_SEQUENCE_ERROR, str(exc))
            return AckReply(build_ack(None, "AE", unreadable), charset=decoded.charset)
        if oversized:
            text = f"the message is over {self.settings.max_message_bytes} bytes"
            _log_refusal(message, peer, "AR", text)
            too_big = Problem(acks.APPLICATION_INTERNAL_ERROR, text)
            return AckReply(build_ack(message, "AR", too_big), True, decoded.charset)
        problem, code = self._refusal(message, peer, decoded.lossy)
        if problem is not None:
            _log_refusal(message, peer, code, problem.text)
            await self._archive_refused(
                raw, decoded.text, decoded.charset, peer, problem.text, message
            )
            return self._answer(message, code, problem)
        return await self._accept(message, raw, decoded.text, decoded.charset, peer)

    def _refusal(self, message: Message, peer: str, lossy: bool) -> tuple[Problem | None, str]:
        code, event, _ = message.message_type
        if not self._peer_allowed(peer):
            return Problem(acks.APPLICATION_INTERNAL_ERROR, "unknown sender", "MSH", 1, 3), "AR"
        if not self._sender_allowed(message):
            text = f"{'^'.join(message.sender)} is not a sender this interface takes (MSH-3)"
            return Problem(acks.APPLICATION_INTERNAL_ERROR, text, "MSH", 1, 3), "AR"
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
        # original mode: the accept ACK is all the sender hears, so it must not say AA to a
        # message the mapping will refuse (enhanced mode says CA, then the application ACK)
        if not enhanced_mode(message) and (lacking := missing(message)) is not None:
            error = acks.REQUIRED_FIELD_MISSING if lacking.field else acks.SEGMENT_SEQUENCE_ERROR
            if lacking.unknown_code:
                error = acks.TABLE_VALUE_NOT_FOUND
            where = (lacking.segment, lacking.sequence, lacking.field)
            return Problem(error, lacking.text, *where), "AE"
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

    def _answer(self, message: Message, code: str, problem: Problem | None) -> AckReply:
        """Original mode as is; enhanced mode answers with C* codes as MSH-15 asks."""
        if not enhanced_mode(message):
            return AckReply(build_ack(message, code, problem), charset=message.charset)
        wanted = message.msh.value(15) or "AL"
        enhanced = {"AA": "CA", "AE": "CE", "AR": "CR"}[code]
        if wanted == "NE" or (wanted == "ER" and code == "AA") or (wanted == "SU" and code != "AA"):
            return AckReply(None)
        return AckReply(build_ack(message, enhanced, problem), charset=message.charset)

    async def _accept(
        self, message: Message, raw: bytes, text: str, charset: str, peer: str
    ) -> AckReply:
        """File the message's claim and publish it; a resend is answered with the first
        copy's ACK once that copy is published, whichever connection or process it came on."""
        answer = self._answer(message, "AA", None)
        big = len(text) > PARSE_OFF_LOOP_CHARS
        digest = await asyncio.to_thread(message.content_hash) if big else message.content_hash()
        candidate = replace(
            _archived(message, raw, text, charset, peer),
            ack=answer.ack or "",
            content_hash=digest,
            claimed_by=self.publisher.claimant,
            claimed_at=datetime.now(UTC),
        )
        # from here on, logs are of this message: its archive id is its correlation id
        with within(Origin(candidate.id, message.sender[0])):
            return await self._file(message, candidate, answer, peer)

    async def _file(
        self, message: Message, candidate: ArchivedMessage, answer: AckReply, peer: str
    ) -> AckReply:
        since = datetime.now(UTC) - timedelta(seconds=self.settings.duplicate_window_s)
        self.publisher.begin(candidate.id)
        try:
            claim = await self.archive.claim(candidate, since, self._refuses_reuse(message))
        except Exception as exc:  # the archive is down: no ACK, the sender resends
            self.publisher.abandon(candidate.id)
            _log_failure(message, peer, exc)
            return AckReply(None, close=True)
        if claim.kind is ClaimKind.RESEND:
            self.publisher.abandon(candidate.id)
            return await self._resend(claim.message)
        if claim.kind is ClaimKind.REUSE_REFUSED:
            self.publisher.abandon(candidate.id)
            _log_refusal(message, peer, "AE", claim.message.error)
            reused = Problem(acks.DUPLICATE_KEY, claim.message.error, "MSH", 1, 10)
            return self._answer(message, "AE", reused)
        if claim.message.duplicate_of:
            log_event(
                log,
                "control_id_reused",
                logging.WARNING,
                sender=f"{message.sender[0]}^{message.sender[1]}",
                control_id=message.control_id,
                archive_id=claim.message.id,
                earlier=claim.message.duplicate_of,
                note="other content under a control id used before: taken as a new message",
            )
        if not await self.publisher.publish(claim.message):
            return AckReply(None, close=True)
        return replace(answer, archive_id=claim.message.id)

    async def _resend(self, earlier: ArchivedMessage) -> AckReply:
        with within(Origin(earlier.id, earlier.sender_application)):  # the first copy's trace
            return await self._answer_resend(earlier)

    async def _answer_resend(self, earlier: ArchivedMessage) -> AckReply:
        log_event(log, "duplicate", archive_id=earlier.id, message_type=earlier.message_type)
        if earlier.status == RECEIVED and not await self.publisher.settle_resend(earlier):
            return AckReply(None, close=True)
        if not earlier.ack and earlier.claimed_by == "":  # in flight elsewhere: read its ACK
            earlier = await self.archive.get(earlier.id)
        return AckReply(earlier.ack or None, charset=earlier.charset, archive_id=earlier.id)

    def _refuses_reuse(self, message: Message) -> bool:
        strict = self.settings.refuse_reused_control_id
        application, facility = message.sender
        return "*" in strict or application in strict or f"{application}^{facility}" in strict

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
            log_event(
                log,
                "archive_failed",
                level=logging.ERROR,
                peer=peer,
                error=f"{type(exc).__name__}: {exc}",
            )


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


def _log_refusal(message: Message | None, peer: str, code: str, reason: str) -> None:
    sender = control = ""
    if message is not None:
        sender, control = "^".join(message.sender), message.control_id
    log_event(
        log,
        "refused",
        logging.WARNING,
        sender=sender,
        control_id=control,
        peer=peer,
        ack=code,
        reason=reason,
    )


def _log_failure(message: Message, peer: str, exc: Exception) -> None:
    log_event(
        log,
        "ingest_failed",
        level=logging.ERROR,
        sender="^".join(message.sender),
        control_id=message.control_id,
        peer=peer,
        error=f"{type(exc).__name__}: {exc}",
    )
