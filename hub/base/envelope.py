"""The message envelope: the one shape every message has on the bus, whatever its payload.

Frozen: a change makes a copy (``evolve``). Its repr and str never show the body or headers,
because both may carry patient data.
"""

import base64
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import uuid_utils
from pydantic import BaseModel, ConfigDict, Field

HL7V2_ER7 = "x-application/hl7-v2+er7"
FHIR_JSON = "application/fhir+json"
ContentType = Literal[
    "x-application/hl7-v2+er7",
    "application/fhir+json",
    "application/json",
    "application/octet-stream",
]

# What the JSON form is called on the wire (the AMQP content type of an encoded envelope).
WIRE_CONTENT_TYPE = "application/vnd.jianhu.envelope+json"


def new_id() -> str:
    """A unique, time-ordered id (UUIDv7): sorts by creation time, safe to use as a key."""
    return str(uuid_utils.uuid7())


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One message: metadata the hub routes and traces by, plus the payload as raw bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_id)
    type: str  # e.g. "hl7v2.ORU.R01" or "fhir.Observation.created"
    source: str  # the sending system, e.g. "LIS"
    content_type: ContentType
    body: bytes
    occurred_at: datetime | None = None
    received_at: datetime = Field(default_factory=utc_now)
    correlation_id: str | None = None
    causation_id: str | None = None
    headers: Mapping[str, str] = Field(default_factory=dict)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        hidden = {"body", "headers"}
        for name, value in super().__repr_args__():
            if name not in hidden:
                yield name, value
        yield "body_bytes", len(self.body)

    def evolve(self, **changes: Any) -> "Envelope":
        """A copy with some fields changed (the envelope itself never changes)."""
        return self.model_copy(update=changes)

    def caused(self, type: str, content_type: ContentType, body: bytes) -> "Envelope":
        """A new envelope produced because of this one: same correlation, causation = this id."""
        return Envelope(
            type=type,
            source=self.source,
            content_type=content_type,
            body=body,
            occurred_at=self.occurred_at,
            correlation_id=self.correlation_id or self.id,
            causation_id=self.id,
            headers=dict(self.headers),
        )

    def to_json(self) -> bytes:
        """orjson encoding; a UTF-8 body stays readable (in the RabbitMQ console, in archives)."""
        data = self.model_dump(exclude={"body"}, exclude_none=True)
        try:
            data["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            data["body_b64"] = base64.b64encode(self.body).decode("ascii")
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> "Envelope":
        data = orjson.loads(raw)
        if "body_b64" in data:
            data["body"] = base64.b64decode(data.pop("body_b64"))
        else:
            data["body"] = data["body"].encode("utf-8")
        return cls.model_validate(data)
