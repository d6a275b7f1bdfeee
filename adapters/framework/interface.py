"""One external interface (an upload, its cancellation, a query): how a ledger payload becomes
an HTTP request, and how the answer is sorted into accepted, rejected or failed.

``rejected`` is a business rule saying no (a wrong code, a missing field): resending changes
nothing and a person must look. ``failed`` is the transport or the receiver in trouble (a
timeout, a 5xx, an answer that cannot be read): the same request is resent later."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import orjson

from hub.base.json import Json


class Reception(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class ReceiverAnswer:
    outcome: Reception
    detail: str = ""  # the receiver's reason, or the transport error
    external_id: str = ""  # the receiver's id for what it accepted


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.body)


Classifier = Callable[[Response], ReceiverAnswer]


def encode(payload: Json, encoding: Literal["json", "form"]) -> tuple[bytes, str]:
    """The body and its content type. In a form post every value that is not a string is sent
    as JSON text (``data={"a":1}``), which is what the Chinese regulator gateways expect."""
    if encoding == "json":
        return orjson.dumps(payload), "application/json; charset=utf-8"
    from urllib.parse import urlencode

    fields = {
        key: value if isinstance(value, str) else orjson.dumps(value).decode()
        for key, value in payload.items()
    }
    return urlencode(fields).encode(), "application/x-www-form-urlencoded; charset=utf-8"


def http_status_classifier(response: Response) -> ReceiverAnswer:
    """For receivers that speak plain HTTP: 2xx accepted, 4xx rejected, the rest failed."""
    if 200 <= response.status < 300:
        return ReceiverAnswer(Reception.ACCEPTED)
    detail = f"HTTP {response.status}: {response.body[:200].decode(errors='replace')}"
    if 400 <= response.status < 500 and response.status not in (408, 429):
        return ReceiverAnswer(Reception.REJECTED, detail)
    return ReceiverAnswer(Reception.FAILED, detail)


@dataclass(frozen=True)
class Interface:
    """``cancel`` names the interface that withdraws an accepted upload; set
    ``cancel_before_reupload`` when the receiver refuses a second upload of the same key until
    the first is cancelled (the DRG platform does)."""

    name: str
    path: str
    classify: Classifier = http_status_classifier
    encoding: Literal["json", "form"] = "json"
    method: str = "POST"
    cancel: str | None = None
    cancel_before_reupload: bool = False
    # the cancellation's payload from the accepted upload's payload and external id
    cancel_payload: Callable[[Json, str], Json] | None = None

    def request(self, payload: Json) -> Request:
        body, content_type = encode(payload, self.encoding)
        return Request(self.method, self.path, {"Content-Type": content_type}, body)
