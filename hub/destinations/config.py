"""The outbound destinations (channels) of a site: ``destinations.json`` in
``JIANHU_CONFIG_DIR`` (the shipped file lists none; ``docs/examples/destinations.json`` has the
hospital's usual ones). Each destination names a transport, a filter over the messages the hub
took in, an optional transform, and its retry policy; each gets a durable queue of its own
(``destination.<name>``), delivers in order per patient and records every delivery in the
delivery ledger."""

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from hub.base import site_files

FILE = "destinations.json"
PACKAGE = "hub.destinations"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,48}$")


class MllpTransport(BaseModel, frozen=True):
    kind: Literal["mllp"]
    host: str
    port: int = Field(ge=1, le=65535)
    charset: str = "utf-8"
    tls: bool = False  # with the system's CA store; a private CA: tls_ca_file
    tls_ca_file: str = ""
    timeout_s: float = Field(30.0, gt=0)
    # tries per send before the delivery waits for the bus's next retry (1 s, 2 s ... apart)
    attempts: int = Field(3, ge=1, le=10)


class HttpTransport(BaseModel, frozen=True):
    """FHIR JSON to a FHIR server: each resource the message produced, PUT at its id."""

    kind: Literal["http"]
    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an Authorization
    timeout_s: float = Field(30.0, gt=0)


class AmqpTransport(BaseModel, frozen=True):
    """The message as it came in (ER7), published to an exchange of the hub's RabbitMQ."""

    kind: Literal["amqp"]
    exchange: str
    routing_key: str


Transport = Annotated[MllpTransport | HttpTransport | AmqpTransport, Field(discriminator="kind")]


class Filter(BaseModel, frozen=True):
    """Which messages go; each condition given must hold (an empty one holds for all)."""

    message_types: tuple[str, ...] = ()  # "ADT" (every event) or "ADT^A01"
    senders: tuple[str, ...] = ()  # MSH-3, or MSH-3^MSH-4
    receivers: tuple[str, ...] = ()  # MSH-5: the performer an order the hub sends names
    departments: tuple[str, ...] = ()  # PV1-3.1 (point of care) or PV1-10 (service)
    patient_classes: tuple[str, ...] = ()  # PV1-2: I, O, E ...
    # a FHIR search over what the message produced, e.g. "Observation?code=http://loinc.org|2345-7":
    # the message goes when one of its resources of that type matches
    fhir: str = ""


class Transform(BaseModel, frozen=True):
    # field -> {their code: our code}, e.g. {"PV1-3.1": {"ICU": "重症监护"}}: values rewritten
    map: dict[str, dict[str, str]] = Field(default_factory=dict)
    # "package.module:function" taking (text, destination name) and returning the text to send
    callable: str = ""


class Destination(BaseModel, frozen=True):
    name: str
    description: str = ""
    transport: Transport
    filter: Filter = Filter()
    transform: Transform = Transform()
    # a transport failure is retried with the bus's backoff (JIANHU_BUS__RETRY_DELAYS_S), and
    # after its delays run out at the longest of them, until this many attempts (0: never give up)
    max_attempts: int = Field(0, ge=0)
    # while paused, or while a receiver is down, deliveries look again at most this often (the
    # longest of the bus's delays within it): how soon after a resume or a recovery they go on
    retry_every_s: float = Field(30.0, gt=0)

    @field_validator("name")
    @classmethod
    def _queue_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("a name is lower-case letters, digits and '-', up to 49")
        return name

    @property
    def queue(self) -> str:
        return queue_of(self.name)


def queue_of(name: str) -> str:
    return f"destination.{name}"


def parse(raw: Any) -> tuple[Destination, ...]:
    """What ``destinations.json`` holds: a list of destinations with distinct names."""
    if not isinstance(raw, list):
        raise ValueError("destinations.json is a list of destinations")
    destinations = tuple(Destination.model_validate(item) for item in raw)
    names = [d.name for d in destinations]
    if len(names) != len(set(names)):
        raise ValueError(f"two destinations share a name: {sorted(names)}")
    return destinations


def configured() -> tuple[Destination, ...]:
    """The site's destinations (read each time: the routing table is built once per process)."""
    return parse(site_files.read_json(PACKAGE, f"data/{FILE}"))
