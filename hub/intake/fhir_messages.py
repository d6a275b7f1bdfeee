"""FHIR JSON published over AMQP: a resource (``fhir.<Type>``) or a transaction or batch Bundle
(``fhir.Bundle``), run as the same request over HTTP would be (the same validation, scopes,
store and audit), with the sender's scopes.

A resource with an id is an update of that id, one without is a create. Each message is filed
in the message archive first, under its sender and ``message_id``: a resend of the same message
(a publisher that did not see its confirm, a redelivery) is answered from the archive, never
written twice; the same ``message_id`` with other content is refused. The archive id is the
correlation id of what the message writes, so after a crash between the write and the
archive's record of it the write is found (``traced``) rather than made again."""

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fhir_profiles.issues import Issue
from hub.base.correlation import Origin, within
from hub.base.envelope import new_id
from hub.base.errors import RetryableError
from hub.base.logs import log_event
from hub.base.tasks import KeyedLocks
from hub.bus.outside import OutsideMessage
from hub.fhir.interaction import FhirRequest
from hub.fhir.nesting import MAX_JSON_DEPTH, too_deep
from hub.fhir.outcome import FhirError, outcome
from hub.fhir.scopes import Principal
from hub.fhir.service import FhirService
from hub.intake.answers import Answer, fhir_answer, refused
from store.archive import (
    PROCESSING,
    REJECTED,
    STORED,
    ArchivedMessage,
    ClaimKind,
    MessageArchive,
)

log = logging.getLogger(__name__)
JSON_TYPES = ("application/fhir+json", "application/json")
BUNDLE_TYPES = ("transaction", "batch")
# Type/id of a Location, absolute or relative, with or without its version
_LOCATION = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9.-]{1,64})(?:/_history/[^/]+)?$")
# how long a message's message_id is remembered: a resend within it is answered from the archive
DUPLICATE_WINDOW = timedelta(days=7)
FHIR_FACILITY = "(fhir)"  # the archive's sender facility of FHIR messages
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class FhirIntake:
    archive: MessageArchive
    service: Callable[[], FhirService]  # a service whose auditor names the AMQP sender
    claimant: str  # this process, as the archive knows it
    claim_grace_s: float  # a claim older than this was left by a process that died
    max_body_bytes: int
    base_url: str
    # copies of one message in this process, one after the other: the second is then a resend
    # of a finished first, answered from the archive (a claim of this process is otherwise
    # taken as the leftover of an earlier attempt that failed)
    _one_at_a_time: KeyedLocks = field(default_factory=KeyedLocks)

    async def take(
        self, message: OutsideMessage, body: bytes, routing_key: str, principal: Principal
    ) -> Answer:
        checked = _checked(message, body, routing_key, self.max_body_bytes)
        if isinstance(checked, Answer):
            return checked
        async with self._one_at_a_time(f"{message.app_id}\n{message.message_id}"):
            return await self._take(message, body, routing_key, principal, checked)

    async def _take(
        self,
        message: OutsideMessage,
        body: bytes,
        routing_key: str,
        principal: Principal,
        checked: dict[str, Any],
    ) -> Answer:
        candidate = _archived(message, body, routing_key, self.claimant)
        claim = await self.archive.claim(
            candidate, datetime.now(UTC) - DUPLICATE_WINDOW, refuse_reuse=True
        )
        filed = claim.message
        if claim.kind is ClaimKind.REUSE_REFUSED:
            return refused(409, "duplicate", filed.error, filed.id)
        if claim.kind is ClaimKind.RESEND and filed.status != PROCESSING:
            log_event(log, "duplicate", archive_id=filed.id, message_type=filed.message_type)
            return _answered_before(filed)
        if claim.kind is ClaimKind.RESEND and not self._abandoned(filed):
            raise RetryableError(f"message {filed.id} is being processed by {filed.claimed_by}")
        with within(Origin(filed.id, message.app_id)):  # what it writes is traced to it
            return await self._run(filed, checked, principal)

    def _abandoned(self, filed: ArchivedMessage) -> bool:
        """Claimed by this process (an earlier attempt failed) or by one that died."""
        stale_before = datetime.now(UTC) - timedelta(seconds=self.claim_grace_s)
        claimed_at = filed.claimed_at or filed.received_at
        return filed.claimed_by == self.claimant or claimed_at < stale_before

    async def _run(
        self, filed: ArchivedMessage, resource: dict[str, Any], principal: Principal
    ) -> Answer:
        service = self.service()
        if await service.resources.traced(filed.id, 1):
            return await self._written_before(service, filed)
        request = _request(resource, principal, self.base_url)
        try:
            response = await service.dispatch(request)
        except FhirError as exc:
            if exc.status >= 500:
                raise RetryableError(f"{exc.status}: {exc}") from exc
            body = orjson.dumps(outcome(*exc.issues))
            await self.archive.set_status(filed.id, REJECTED, str(exc), ack=body.decode())
            return fhir_answer(exc.status, body, filed.id, refusal=str(exc) or "refused")
        body = response.body_bytes()
        await self.archive.set_status(filed.id, STORED, ack=body.decode(), resources=_written(body))
        return fhir_answer(response.status, body, filed.id)

    async def _written_before(self, service: FhirService, filed: ArchivedMessage) -> Answer:
        """The write committed but the process died before the archive recorded it."""
        versions = await service.resources.traced(filed.id, 10_000)
        written = tuple(dict.fromkeys(f"{v.type}/{v.id}" for v in versions))
        text = f"written before a restart: {', '.join(written[:20])} (jianhu trace {filed.id})"
        body = orjson.dumps(outcome(Issue("information", "informational", text)))
        await self.archive.set_status(filed.id, STORED, ack=body.decode(), resources=written)
        return fhir_answer(200, body, filed.id)


def _checked(
    message: OutsideMessage, body: bytes, routing_key: str, limit: int
) -> dict[str, Any] | Answer:
    """The parsed resource, or the refusal of a message that cannot be a FHIR request."""
    if not message.message_id:
        return refused(400, "required", "message_id is required: it makes a resend harmless")
    media_type = message.content_type.partition(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        text = f"content type {message.content_type or '(none)'}: send application/fhir+json"
        return refused(415, "not-supported", text)
    if len(body) > limit:
        return refused(413, "too-costly", f"the message is over {limit} bytes")
    try:
        resource = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return refused(400, "structure", f"not JSON: {exc}")
    if not isinstance(resource, dict):
        return refused(400, "structure", "the body is not a FHIR resource (a JSON object)")
    if too_deep(resource, MAX_JSON_DEPTH):
        return refused(400, "structure", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    if "id" in resource and not (isinstance(resource["id"], str) and FHIR_ID.match(resource["id"])):
        return refused(400, "invalid", "the resource's id is not a FHIR id")
    type_ = routing_key.partition(".")[2]
    if resource.get("resourceType") != type_:
        text = f"routing key {routing_key} but resourceType {resource.get('resourceType')!r}"
        return refused(400, "invalid", text)
    if type_ == "Bundle" and resource.get("type") not in BUNDLE_TYPES:
        text = f"a Bundle of type {resource.get('type')!r}: send a transaction or a batch"
        return refused(400, "not-supported", text)
    return resource


def _archived(
    message: OutsideMessage, body: bytes, routing_key: str, claimant: str
) -> ArchivedMessage:
    now = datetime.now(UTC)
    return ArchivedMessage(
        id=new_id(),
        received_at=now,
        sender_application=message.app_id,
        # FHIR message ids and HL7 control ids are not one keyspace: the same string from one
        # sender in both is not a reused id
        sender_facility=FHIR_FACILITY,
        peer=f"amqp:{message.user_id}" if message.user_id else "amqp",
        message_type=routing_key,
        control_id=message.message_id,
        charset="utf-8",
        raw=body,
        text=body.decode("utf-8", errors="replace"),
        status=PROCESSING,
        content_hash=hashlib.sha256(body).hexdigest(),
        claimed_by=claimant,
        claimed_at=now,
    )


def _request(resource: dict[str, Any], principal: Principal, base: str) -> FhirRequest:
    type_ = resource["resourceType"]
    if type_ == "Bundle":
        return FhirRequest("POST", "", principal, body=resource, base=base)
    if isinstance(resource.get("id"), str) and resource["id"]:
        path = f"{type_}/{resource['id']}"
        return FhirRequest("PUT", path, principal, body=resource, base=base)
    return FhirRequest("POST", type_, principal, body=resource, base=base)


def _written(body: bytes) -> tuple[str, ...]:
    """Type/id of what a response says was written: the resource, or a Bundle's entries."""
    answer = orjson.loads(body) if body else {}
    if answer.get("resourceType") != "Bundle":
        return (f"{answer['resourceType']}/{answer['id']}",) if "id" in answer else ()
    entries = answer.get("entry", [])
    locations = [(entry.get("response") or {}).get("location", "") for entry in entries]
    found = (_LOCATION.search(location) for location in locations)
    return tuple(dict.fromkeys(f"{m[1]}/{m[2]}" for m in found if m is not None))


def _answered_before(filed: ArchivedMessage) -> Answer:
    """A resend: the first copy's answer again, without running it again (refused again with
    the same reason, when it was refused)."""
    if filed.status == STORED:
        return fhir_answer(200, filed.ack.encode(), filed.id)
    return fhir_answer(400, filed.ack.encode(), filed.id, refusal=filed.error or "refused")
