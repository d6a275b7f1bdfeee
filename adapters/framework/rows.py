"""Platforms that take rows of their own tables (the regional health platforms' ``TB_*``
tables): each ledger submission is one row, sent either into the platform's front-end database
(前置库, ``FrontDatabaseTransport``) or pushed over HTTP as JSON. Either way the ledger records
what was sent, when, the answer, and the corrections.

The row in the ledger is the business content only: columns stamped at send time (the upload
time, 上传时间) are added by the interface, so recomputing an unchanged row is not a new
submission. A revocation (修改标志 XGBZ = 1, 撤销) is the accepted row again with the flag set,
built from the ledger's copy."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from adapters.framework.front_database import FrontDatabase, FrontDatabaseRefusedError
from adapters.framework.interface import (
    Interface,
    ReceiverAnswer,
    Reception,
    Request,
    Response,
)
from adapters.framework.transport import TransportError
from hub.base.errors import RetryableError
from hub.base.json import Json
from hub.base.masking import mask_text

Stamp = Callable[[], Mapping[str, Any]]
KEY_COLUMNS_HEADER = "X-Key-Columns"
UPSERT, INSERT = "UPSERT", "INSERT"


def _no_stamp() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class RowInterface(Interface):
    """One table of a platform. ``via="database"``: the request names the table and how the row
    is written (an upsert by ``keys``, or an insert when there are none) for
    ``FrontDatabaseTransport``; ``via="http"``: a JSON POST of ``{"table": ..., "rows": [...]}``
    to ``path``."""

    table: str = ""
    keys: tuple[str, ...] = ()
    via: Literal["database", "http"] = "http"
    stamp: Stamp = field(default=_no_stamp, compare=False)

    def request(self, payload: Json) -> Request:
        row = {**payload, **self.stamp()}
        if self.via == "database":
            method = UPSERT if self.keys else INSERT
            headers = {KEY_COLUMNS_HEADER: ",".join(self.keys)}
            return Request(method, self.table, headers, orjson.dumps([row]))
        body = orjson.dumps({"table": self.table, "rows": [row]})
        return Request(self.method, self.path, {"Content-Type": "application/json"}, body)


def revocation(flag_column: str, revoked: str = "1") -> Callable[[Json, str], Json]:
    """The cancellation payload of an accepted row: the same row, flagged as revoked."""

    def build(upload: Json, external_id: str) -> Json:
        return {**upload, flag_column: revoked}

    return build


def coded_answer(
    success: tuple[str, ...], code_field: str = "code", message_field: str = "msg"
) -> Callable[[Response], ReceiverAnswer]:
    """For a platform that answers JSON ``{"code": ..., "msg": ...}``: a success code accepted,
    another code rejected with the platform's message; a 5xx, 408, 429 or an answer that is not
    the platform's JSON failed (sent again later); another 4xx rejected."""

    def classify(response: Response) -> ReceiverAnswer:
        text = response.body[:300].decode(errors="replace")
        if response.status >= 500 or response.status in (408, 429):
            return ReceiverAnswer(Reception.FAILED, f"HTTP {response.status}: {text}")
        if response.status >= 400:
            return ReceiverAnswer(Reception.REJECTED, f"HTTP {response.status}: {text}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or code_field not in body:
            return ReceiverAnswer(Reception.FAILED, f"unreadable answer: {text}")
        code = str(body[code_field])
        if code in success:
            return ReceiverAnswer(Reception.ACCEPTED)
        return ReceiverAnswer(Reception.REJECTED, f"{code}: {body.get(message_field, '')}")

    return classify


class FrontDatabaseTransport:
    """Writes a ``RowInterface`` request's rows into the front-end database: answers 200 when
    they are written, 422 with the database's reason when it refuses them (rejected: a person
    looks), and ``TransportError`` when the database cannot be reached (sent again later)."""

    def __init__(self, database: FrontDatabase) -> None:
        self.database = database

    async def send(self, request: Request) -> Response:
        rows = orjson.loads(request.body)
        keys = tuple(k for k in request.headers.get(KEY_COLUMNS_HEADER, "").split(",") if k)
        try:
            if request.method == UPSERT:
                written = await self.database.upsert(request.path, keys, rows)
            else:
                written = await self.database.insert(request.path, rows)
        except FrontDatabaseRefusedError as exc:
            return Response(422, str(exc).encode())
        except RetryableError as exc:
            raise TransportError(str(exc)) from exc
        except Exception as exc:  # a driver's own error: the ledger must not stay "sending"
            raise TransportError(f"{type(exc).__name__}: {mask_text(str(exc))[:300]}") from exc
        return Response(200, orjson.dumps({"written": written}))

    async def close(self) -> None:
        await self.database.close()
