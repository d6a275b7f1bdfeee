"""The audit trail: an AuditEvent for every FHIR interaction a caller makes (who, what, when,
outcome), stored in the clinical store, so it is searchable like any resource
(``AuditEvent?agent-name=dr-wang&date=ge2026-11-01``).

Events are buffered and written in batches by one task, off the request's path; a batch is one
store write without outbox events (the trail is not a clinical event). Stopping the hub writes
what is buffered.
"""

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from hub.base.correlation import current
from hub.base.logs import log_event
from hub.base.tasks import cancel, wait_event
from hub.fhir.interaction import FhirRequest
from hub.fhir.outcome import FhirError
from hub.fhir.paths import Target, parse_path
from store.audit_columns import request_id_entity
from store.index import instant
from store.resources import Resource, ResourceStore

log = logging.getLogger(__name__)
FLUSH_S, BATCH = 0.25, 500
_ACTIONS = {"POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}

# Called once per interaction (and once per Bundle entry): the request, its HTTP status and
# the Location of what it wrote, if anything.
Auditor = Callable[[FhirRequest, int, str | None], None]


def interaction_event(
    request: FhirRequest, status: int, location: str | None, remote: str | None
) -> Resource:
    """The AuditEvent of one interaction, naming the resource it read or wrote."""
    try:
        target = parse_path(request.path)
    except FhirError:
        target = Target()
    what = None
    if location:  # Type/id of what was written
        what = "/".join(location.removeprefix(request.base + "/").split("/")[:2])
    elif target.type and target.id:
        what = f"{target.type}/{target.id}"
    return audit_event(request, target, status, remote, what)


def interaction_code(request: FhirRequest, target: Target) -> str:
    """The restful-interaction code of the request."""
    if target.operation:
        return "operation"
    if target.type is None:
        if target.history:
            return "history-system"
        return str((request.body or {}).get("type", "batch")) if request.method == "POST" else ""
    if target.history:
        if target.version is not None:
            return "vread"
        return "history-instance" if target.id else "history-type"
    if target.search or (request.method == "GET" and target.id is None):
        return "search-type"
    return {"GET": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        request.method, "create"
    )


def audit_event(
    request: FhirRequest, target: Target, status: int, remote: str | None, what: str | None
) -> Resource:
    principal = request.principal
    code = interaction_code(request, target)
    action = "E" if code == "operation" else _ACTIONS.get(request.method, "R")
    if code in ("search-type", "history-type", "history-system") or target.search:
        action = "E" if code == "search-type" else "R"
    agent: dict[str, Any] = {
        "who": {"identifier": {"value": principal.subject}},
        "name": principal.subject,
        "requestor": True,
        "role": [{"text": principal.role}],
    }
    if remote:
        agent["network"] = {"address": remote, "type": "2"}
    event: Resource = {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": code}],
        "action": action,
        "recorded": instant(datetime.now(UTC)),
        "outcome": "0" if status < 400 else "4" if status < 500 else "8",
        "agent": [agent],
        "source": {"observer": {"display": "Jianhu FHIR API"}},
    }
    entity: dict[str, Any] = {}
    if what:
        entity["what"] = {"reference": what}
    elif target.type:
        entity["what"] = {"display": target.type}
    if request.query and code in ("search-type", "history-type", "operation"):
        entity["query"] = base64.b64encode(urlencode(request.query).encode()).decode()
    entities = [entity] if entity else []
    origin = current()
    if origin is not None:  # the request's id, so ``jianhu trace`` finds the request itself
        entities.append(request_id_entity(origin.correlation))
    if entities:
        event["entity"] = entities
    return event


class AuditTrail:
    def __init__(self, resources: ResourceStore) -> None:
        self.resources = resources
        self._buffer: list[Resource] = []
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def record(self, event: Resource) -> None:
        self._buffer.append(event)
        if len(self._buffer) >= BATCH:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.flush()

    async def flush(self) -> None:
        # one flush at a time: two would write the same batch twice, and the second's delete
        # would drop events recorded meanwhile (the background flusher and a trace's flush)
        async with self._flushing:
            while self._buffer:
                batch = self._buffer[:BATCH]
                await self.resources.append_audit(batch)  # on failure it stays for the next
                del self._buffer[: len(batch)]

    async def _run(self) -> None:
        while True:
            await wait_event(self._wake, FLUSH_S)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the store is failing: keep the events, try again
                log_event(log, "audit_flush_failed", level=logging.ERROR, error=type(exc).__name__)
                await asyncio.sleep(FLUSH_S)
