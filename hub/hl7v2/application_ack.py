"""Application acknowledgements in enhanced mode. The listener's accept ACK (CA) says the
message is safe; a sender that also asks for an application ACK (MSH-16: AL always, ER on
error, SU on success) gets one once the message is normalized: AA, or AE with an ERR saying
why. It goes back through the bus, so a hub restart loses none, and through the MLLP client to
the address configured for that sender (``JIANHU_HL7__APPLICATION_ACK``): AA/CA from the
sender ends it, AE/AR goes to the dead letters for a person, a transport failure is retried."""

import logging
from typing import Protocol

from hub.base.envelope import Envelope
from hub.base.errors import PermanentError, RetryableError
from hub.base.logs import log_event
from hub.bus.base import Bus, Delivery, Handler
from hub.bus.topology import INBOUND
from hub.hl7v2.ack import APPLICATION_INTERNAL_ERROR, Problem, build_ack
from hub.hl7v2.client import ACCEPTED, REJECTED, MllpClient
from hub.hl7v2.message import Message
from hub.hl7v2.settings import Hl7Settings

APPLICATION_ACK_KEY = "hub.hl7v2.application-ack"
log = logging.getLogger(__name__)


class HasHl7Settings(Protocol):
    @property
    def hl7(self) -> Hl7Settings: ...


class Requester(Protocol):
    @property
    def bus(self) -> Bus: ...

    @property
    def settings(self) -> HasHl7Settings: ...


class Services(Requester, Protocol):
    def mllp_client(self, host: str, port: int, charset: str) -> MllpClient: ...


def wanted(message: Message, succeeded: bool) -> bool:
    condition = message.msh.value(16).upper()
    return (
        condition == "AL"
        or (condition == "ER" and not succeeded)
        or (condition == "SU" and succeeded)
    )


async def request(
    services: Requester, delivery: Envelope, message: Message, error: str = ""
) -> None:
    """Queue the application ACK of ``message`` when its sender asked for one."""
    succeeded = not error
    if not wanted(message, succeeded):
        return
    application, facility = message.sender
    if services.settings.hl7.application_ack_endpoint(application, facility) is None:
        log_event(
            log,
            "application-ack-unroutable",
            logging.WARNING,
            sender=f"{application}^{facility}",
        )
        return
    if succeeded:
        text = build_ack(message, "AA")
    else:
        text = build_ack(message, "AE", Problem(APPLICATION_INTERNAL_ERROR, error))
    charset = delivery.headers.get("charset", "utf-8")
    ack = delivery.caused("hl7v2.application-ack", "x-application/hl7-v2+er7", text.encode())
    ack = ack.evolve(
        headers={"sender": application, "facility": facility, "charset": charset},
    )
    await services.bus.publish(ack, APPLICATION_ACK_KEY, INBOUND)


def sender(services: Services) -> Handler:
    async def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        application = envelope.headers.get("sender", "")
        facility = envelope.headers.get("facility", "")
        endpoint = services.settings.hl7.application_ack_endpoint(application, facility)
        if endpoint is None:
            raise PermanentError(f"no application-ACK address for {application}^{facility}")
        charset = envelope.headers.get("charset", "utf-8")
        client = services.mllp_client(*endpoint, charset)
        result = await client.send(envelope.body.decode())
        if result.outcome == ACCEPTED:
            return
        if result.outcome == REJECTED:
            raise PermanentError(f"{application} refused the application ACK: {result.code}")
        raise RetryableError(f"the application ACK to {application} failed: {result.error}")

    return handle
