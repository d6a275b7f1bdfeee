"""Orders out: each version of a ServiceRequest written through the FHIR API or over AMQP (not
one an HL7 order or result brought in: its sender has it) becomes an order message for the
system that performs it (``hub.orders.messages``), filed in the message archive as the hub's own
(sender ``JIANHU``) and announced like a message taken in, so the destinations pass it on with
their queues, order per patient, retries and ledger.

What is sent follows the request's status and what was sent before, read from its history: the
first active version is a new order (NW), a later active one a change (XO); revoked, entered in
error or deleted after an active version, a cancel (CA); active again after a cancel, a new
order; anything else (draft, completed...) nothing. A
version seen again (a redelivered event) is the same message, a resend, not a second order."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hub.base.envelope import Envelope, new_id
from hub.base.errors import (
    PermanentError,
    ResourceGoneError,
    ResourceNotFoundError,
    StoreError,
)
from hub.base.logs import log_event
from hub.bus.base import Bus, Delivery
from hub.events import Change, read_change_set
from hub.hl7v2.message import Message
from hub.hl7v2.processed import announce
from hub.orders.messages import Order, control_id, order_message
from hub.orders.settings import Kind, OrdersSettings
from store.archive import STORED, ArchivedMessage, MessageArchive
from store.resources import ResourceStore

log = logging.getLogger(__name__)
QUEUE = "orders.out"
BINDINGS = tuple(f"fhir.ServiceRequest.{change}" for change in ("created", "updated", "deleted"))
HUB_SENDER = "JIANHU"
RESEND_WINDOW = timedelta(days=7)
_SNOMED = "http://snomed.info/sct"
_KINDS: dict[tuple[str, str], Kind] = {
    (_SNOMED, "108252007"): "laboratory",
    (_SNOMED, "363679005"): "imaging",
}
# v2 table 0074 diagnostic service sections, as the HIS's own orders carry them
_SECTIONS: dict[str, Kind] = {
    **dict.fromkeys(("LAB", "CH", "HM", "MB", "SR", "IMM", "BG", "SP"), "laboratory"),
    **dict.fromkeys(("RAD", "CT", "MR", "US", "NMR", "NMS", "RX", "XRC", "CUS"), "imaging"),
}
CANCELLED = ("revoked", "entered-in-error")


@dataclass(frozen=True)
class OrdersOut:
    settings: OrdersSettings
    resources: ResourceStore
    archive: MessageArchive
    bus: Bus

    async def __call__(self, delivery: Delivery) -> None:
        if await self._brought_in_by_hl7(delivery.envelope.correlation_id or ""):
            return  # the HIS placed it (or a result implied it): the performer has it already
        for change in read_change_set(delivery.envelope, delivery.routing_key):
            request = change.resource or await self._withdrawn(change)
            if request is not None:
                await self._send(change, request, delivery.envelope)

    async def _withdrawn(self, change: Change) -> dict[str, Any] | None:
        """A deleted request as the version before its deletion, revoked: what a cancel of
        it says (sent only if that version was active)."""
        last = await self._version(change.id, change.version - 1)
        return {**last, "status": "revoked"} if last is not None else None

    async def _brought_in_by_hl7(self, correlation: str) -> bool:
        try:
            archived = await self.archive.get(correlation)
        except StoreError:
            return False  # no message: a FHIR API request
        return not archived.message_type.startswith("fhir.")

    async def _send(self, change: Change, request: dict[str, Any], cause: Envelope) -> None:
        kind = kind_of(request)
        performer = self.settings.performers.get(kind) if kind else None
        if performer is None or request.get("intent", "order") not in ("order", "original-order"):
            return
        control = await self._control(change, request)
        if control is None:
            return
        patient = await self._referenced(request.get("subject"), "Patient")
        if patient is None:  # a performer cannot take an order for nobody: a person must look
            raise PermanentError(f"ServiceRequest/{change.id} names no Patient in the store")
        encounter = await self._referenced(request.get("encounter"), "Encounter")
        requester = await self._referenced(request.get("requester"), "Practitioner")
        order = Order(
            request,
            patient,
            encounter,
            control,
            performer.message,
            performer.receiver,
            self.settings.facility,
            requester,
        )
        text = order_message(order)
        filed = await self.archive.claim(
            _archived(text, order, change), datetime.now(UTC) - RESEND_WINDOW
        )
        log_event(
            log,
            "order_out",
            request=change.id,
            version=change.version,
            control=control,
            receiver=performer.receiver,
            archive_id=filed.message.id,
        )
        await announce(self.bus, filed.message.id, cause)

    async def _control(self, change: Change, request: dict[str, Any]) -> str | None:
        """NW for a request the performer does not hold (never sent, or cancelled since), XO
        for a change to one it holds, CA to withdraw one it holds; else nothing."""
        status = request.get("status")
        if status != "active" and status not in CANCELLED:
            return None
        held = False  # whether the latest version that was sent left it with the performer
        for version in range(change.version - 1, 0, -1):
            earlier = await self._version(change.id, version)
            if earlier is not None and earlier.get("status") in ("active", *CANCELLED):
                held = earlier["status"] == "active"
                break
        if status == "active":
            return "XO" if held else "NW"
        return "CA" if held else None

    async def _version(self, id_: str, version: int) -> dict[str, Any] | None:
        if version < 1:
            return None
        try:
            found = await self.resources.vread("ServiceRequest", id_, version)
        except (ResourceGoneError, ResourceNotFoundError):
            return None
        return orjson.loads(found.body) if found.body is not None else None

    async def _referenced(self, reference: Any, type_: str) -> dict[str, Any] | None:
        target = (reference or {}).get("reference", "") if isinstance(reference, dict) else ""
        wanted, _, id_ = target.partition("/")
        if wanted != type_ or not id_:
            return None
        try:
            found = await self.resources.read(type_, id_)
        except (ResourceGoneError, ResourceNotFoundError):
            return None
        return orjson.loads(found.body) if found.body is not None else None


def kind_of(request: dict[str, Any]) -> Kind | None:
    for category in request.get("category", []):
        for coding in category.get("coding", []):
            kind = _KINDS.get((coding.get("system", ""), coding.get("code", "")))
            kind = kind or _SECTIONS.get(coding.get("code", ""))
            if kind is not None:
                return kind
    return None


def _archived(text: str, order: Order, change: Change) -> ArchivedMessage:
    now = datetime.now(UTC)
    message = Message(text)
    pid = message.first("PID")
    patients = tuple(r.split("^")[0] for r in pid.repetitions(3)) if pid is not None else ()
    return ArchivedMessage(
        id=new_id(),
        received_at=now,
        sender_application=HUB_SENDER,
        sender_facility=order.facility,
        peer="hub",
        message_type=order.message,
        control_id=control_id(change.id, str(change.version)),
        charset="utf-8",
        raw=text.encode(),
        text=text,
        status=STORED,
        patient_ids=patients,
        resources=(f"ServiceRequest/{change.id}",),
        content_hash=message.content_hash(),
    )
