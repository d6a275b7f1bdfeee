"""The AMQP intake (docs/amqp.md) as the hub sees it: its settings (``JIANHU_AMQP_INTAKE__*``),
its queue on the inbound exchange (``hl7v2`` and ``fhir.*``: the keys systems publish with) and
its handler, built from the running hub's ingest, archive and FHIR service."""

from typing import Any

from hub.bus.base import Handler
from hub.bus.routing import Route
from hub.bus.topology import INBOUND
from hub.fhir.audit import interaction_event
from hub.fhir.interaction import FhirRequest
from hub.fhir.service import FhirService
from hub.hl7v2.ingest import Ingest
from hub.hl7v2.settings import ListenerSettings
from hub.intake.amqp import BINDINGS, QUEUE, AmqpIntake
from hub.intake.fhir_messages import FhirIntake
from hub.intake.settings import AmqpIntakeSettings
from hub.plugin import FeaturePlugin

NAME = "amqp_intake"


def _handler(runtime: Any) -> Handler:
    settings = runtime.settings

    def ingest(listener: ListenerSettings) -> Ingest:
        return Ingest(runtime.publisher, runtime.archive, listener, settings.hl7.message_types)

    def record(request: FhirRequest, status: int, location: str | None) -> None:
        if runtime.audit is not None:
            runtime.audit.record(interaction_event(request, status, location, None))

    def service() -> FhirService:
        return FhirService(runtime.resources, settings.fhir, record, runtime.terminology)

    fhir = FhirIntake(
        archive=runtime.archive,
        service=service,
        claimant=runtime.publisher.claimant,
        claim_grace_s=settings.hl7.claim_grace_s,
        max_body_bytes=settings.fhir.max_body_bytes,
        base_url=settings.fhir.base_url.rstrip("/"),
    )
    return AmqpIntake(settings.section(NAME), runtime.bus, ingest, fhir)


PLUGIN = FeaturePlugin(
    name=NAME,
    settings=AmqpIntakeSettings,
    routes=(
        Route(
            QUEUE,
            INBOUND,
            BINDINGS,
            "amqp-intake",
            "take systems' plain HL7 v2 and FHIR messages (docs/amqp.md): check, archive, store",
            plain_messages=True,
        ),
    ),
    handlers={"amqp-intake": _handler},
)
