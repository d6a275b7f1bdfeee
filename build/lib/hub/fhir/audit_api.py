"""AuditEvent through the FHIR API, served by the audit log: read, create (other systems'
own audit records) and search by ``_id``, ``date``, ``agent-name``, ``entity``, ``subtype``,
``action`` and ``outcome``. Audit records are immutable: update, patch and delete are 405."""

from typing import TYPE_CHECKING

from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import FhirError
from hub.fhir.paths import Target
from hub.fhir.responses import resource_response
from hub.fhir.search import bundle, links, page_size
from store.index import date_range
from store.resources import AuditFilter

if TYPE_CHECKING:
    from hub.fhir.service import FhirService

SEARCH_PARAMS = {
    "_id": "token",
    "date": "date",
    "agent-name": "string",
    "entity": "reference",
    "subtype": "token",
    "action": "token",
    "outcome": "token",
}
_CONTROL = {"_count", "_cursor", "_sort", "_format", "_pretty", "_total", "_summary"}
# FHIR date prefixes over the searched range [lo, hi], against the instant recorded
_DATE_OPS: dict[str, tuple[tuple[str, int], ...]] = {
    "eq": ((">=", 0), ("<=", 1)),
    "ge": ((">=", 0),),
    "gt": ((">", 1),),
    "le": (("<=", 1),),
    "lt": (("<", 0),),
}


class AuditApi:
    def __init__(self, service: "FhirService") -> None:
        self.service = service

    async def handle(self, request: FhirRequest, target: Target) -> FhirResponse:
        audit = self.service.resources.audit
        if target.id and request.method == "GET" and target.version in (None, 1):
            return resource_response(await audit.read(target.id))
        if target.id is None and not target.history:
            if request.method == "GET" or target.search:
                return await self.search(request)
            if request.method == "POST":
                return await self.create(request)
        raise FhirError.of(
            405, "not-supported", "audit records are immutable: read, search and create only"
        )

    async def create(self, request: FhirRequest) -> FhirResponse:
        event = self.service.checked_body(request, "AuditEvent")
        (stored,) = await self.service.resources.append_audit([event])
        location = f"{request.base}/AuditEvent/{stored['id']}"
        return FhirResponse(201, stored, {"Location": location, "ETag": 'W/"1"'})

    async def search(self, request: FhirRequest) -> FhirResponse:
        filters, newest_first = parse_audit_query(request.query)
        options = dict(request.query)
        audit = self.service.resources.audit
        if options.get("_summary") == "count":
            result = bundle("searchset", [], links(request, "AuditEvent", None))
            result["total"] = await audit.count(filters)
            return FhirResponse(200, result)
        page = await audit.search(
            filters, page_size(request.query), options.get("_cursor"), newest_first
        )
        entries = [
            {
                "fullUrl": f"{request.base}/AuditEvent/{v.id}",
                "resource": resource_response(v).body_fragment(),
                "search": {"mode": "match"},
            }
            for v in page.items
        ]
        return FhirResponse(
            200, bundle("searchset", entries, links(request, "AuditEvent", page.next_cursor))
        )


def parse_audit_query(query: tuple[tuple[str, str], ...]) -> tuple[list[AuditFilter], bool]:
    filters: list[AuditFilter] = []
    newest_first = False
    for name, value in query:
        if name == "_sort":
            if value not in ("date", "-date"):
                raise FhirError.of(400, "not-supported", "the audit log sorts by date or -date")
            newest_first = value == "-date"
        elif name in _CONTROL:
            continue
        elif name not in SEARCH_PARAMS:
            supported = ", ".join(SEARCH_PARAMS)
            raise FhirError.of(
                400, "not-supported", f"the audit log is searched by {supported}, not {name}"
            )
        elif "," in value:
            raise FhirError.of(400, "not-supported", f"{name}: one value at a time")
        else:
            filters.extend(_filters(name, value))
    return filters, newest_first


def _filters(name: str, value: str) -> list[AuditFilter]:
    kind = SEARCH_PARAMS[name]
    if kind == "date":
        prefix, text = (value[:2], value[2:]) if value[:2] in _DATE_OPS else ("eq", value)
        bounds = date_range(text)
        if bounds is None:
            raise FhirError.of(400, "invalid", f"date: {text!r} is not a FHIR date")
        return [AuditFilter(name, op, bounds[side]) for op, side in _DATE_OPS[prefix]]
    if kind == "token":
        value = value.rpartition("|")[2]
    return [AuditFilter(name, "=", value)]
