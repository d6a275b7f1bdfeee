"""The FHIR interactions over a ``ResourceStore``: read and vread here; the writes (create,
update, patch, delete and their conditional forms) in ``hub.fhir.writes``; search and history
(``hub.fhir.search``), transaction and batch Bundles (``hub.fhir.transaction``) and the
operations (``hub.fhir.operations``).

``dispatch`` takes a ``FhirRequest`` and returns a ``FhirResponse`` or raises ``FhirError``;
the HTTP layer and transaction entries both go through it.
"""

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fhir_profiles.validation import validate
from hub.base.errors import ResourceGoneError, ResourceNotFoundError, SearchError
from hub.fhir.access import authorize, check_visible, check_writable, limited
from hub.fhir.audit import Auditor
from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import FhirError
from hub.fhir.paths import Target, parse_path
from hub.fhir.responses import resource_response
from hub.fhir.settings import FhirSettings
from hub.fhir.shaping import shape, shaping
from hub.fhir.terminology import Terminology
from hub.fhir.writes import PreparedWrite
from store.query import parse_search
from store.resources import Resource, ResourceStore, StoredVersion

InteractionHandler = Callable[[FhirRequest, Target], Awaitable[FhirResponse]]


@contextmanager
def _store_errors() -> Iterator[None]:
    """The store's refusals as the HTTP statuses they mean."""
    try:
        yield
    except SearchError as exc:
        raise FhirError.of(400, "invalid", str(exc)) from exc
    except ResourceGoneError as exc:
        raise FhirError.of(410, "deleted", str(exc)) from exc
    except ResourceNotFoundError as exc:
        raise FhirError.of(404, "not-found", str(exc)) from exc


class FhirService:
    def __init__(
        self,
        resources: ResourceStore,
        settings: FhirSettings | None = None,
        auditor: Auditor | None = None,
        terminology: Terminology | None = None,
    ) -> None:
        self.resources = resources
        # the hub's one cache of look-ups (the runtime's); a service alone gets its own
        self.terminology = terminology or Terminology(resources)
        self.settings = settings or FhirSettings()
        self.validate_input = self.settings.validate_input
        self.auditor = auditor
        # late imports keep each module small and free of cycles
        from hub.fhir import audit_api, operations, search, transaction, writes

        self.writes = writes.Writes(self)
        self.audit = audit_api.AuditApi(self)
        self.search = search.Searcher(self)
        self.operations = operations.Operations(self)
        self.bundles = transaction.BundleProcessor(self)

    async def dispatch(self, request: FhirRequest) -> FhirResponse:
        """Run one interaction and leave its AuditEvent, whatever the outcome."""
        try:
            response = await self.run(request)
        except FhirError as exc:
            self.audit_interaction(request, exc.status, None)
            raise
        except Exception:
            self.audit_interaction(request, 500, None)
            raise
        self.audit_interaction(request, response.status, response.headers.get("Location"))
        return response

    def audit_interaction(self, request: FhirRequest, status: int, location: str | None) -> None:
        if self.auditor is not None:
            self.auditor(request, status, location)

    async def run(self, request: FhirRequest) -> FhirResponse:
        """One interaction, unaudited: a transaction audits its entries once it knows whether
        they were committed."""
        with _store_errors():
            target = self.target(request)
            preparer = self.writes.preparer(request.method, target)
            if preparer is not None:
                return await self.writes.commit(request, await preparer(request, target))
            return await self._route(request, target)(request, target)

    async def prepare(self, request: FhirRequest) -> PreparedWrite | None:
        """A transaction entry's write, checked as the same request alone would be; None when
        the entry is no resource write (a read, an operation)."""
        with _store_errors():
            target = self.target(request)
            preparer = self.writes.preparer(request.method, target)
            return await preparer(request, target) if preparer is not None else None

    def target(self, request: FhirRequest) -> Target:
        target = parse_path(request.path)
        authorize(request, target)
        return target

    def _route(self, request: FhirRequest, target: Target) -> InteractionHandler:
        method = request.method
        if target.type == "AuditEvent" and target.operation is None:
            return self.audit.handle
        if target.operation is not None:
            return self.operations.handle
        if target.type is None:
            return self._system(method, target)
        if target.history:
            return self._history(method, target)
        if target.id is None:
            if target.search:
                return self.search.search if method == "POST" else _not_allowed(method, "_search")
            return self.search.search if method == "GET" else _not_allowed(method, "a type")
        return self.read if method == "GET" else _not_allowed(method, "a resource")

    def _system(self, method: str, target: Target) -> InteractionHandler:
        if target.history and method == "GET":
            return self.search.history
        if not target.history and method == "POST":
            return self.bundles.process
        return _not_allowed(method, "the server base")

    def _history(self, method: str, target: Target) -> InteractionHandler:
        if target.version is not None and method == "GET":
            return self.vread
        return self.search.history if method == "GET" else _not_allowed(method, "a history")

    # --- reads ---
    async def read(self, request: FhirRequest, target: Target) -> FhirResponse:
        version = await self.resources.read(target.type or "", target.id or "")
        return self._read_response(request, version)

    async def vread(self, request: FhirRequest, target: Target) -> FhirResponse:
        type_, id_ = target.type or "", target.id or ""
        version = await self.resources.vread(type_, id_, target.version or 0)
        return self._read_response(request, version)

    def _read_response(self, request: FhirRequest, version: StoredVersion) -> FhirResponse:
        check_visible(request, version)
        if request.header("if-none-match") in (version.etag, f'"{version.version}"'):
            return FhirResponse(304, None, {"ETag": version.etag})
        summary, names = shaping(request.query)
        body = None
        if summary is not None or names is not None:
            body = shape(version.body or b"{}", summary, names)
        return resource_response(version, body)

    # --- shared checks ---
    def checked_body(self, request: FhirRequest, type_: str) -> Resource:
        body = request.body
        if not isinstance(body, dict):
            raise FhirError.of(400, "invalid", "the body must be a FHIR resource (a JSON object)")
        if body.get("resourceType") != type_:
            found = body.get("resourceType")
            raise FhirError.of(400, "invalid", f"resourceType {found!r} is not {type_}")
        check_writable(request, body)
        self.check_valid(body)
        return dict(body)

    def check_valid(self, resource: Resource) -> None:
        if not self.validate_input:
            return
        issues = [issue for issue in validate(resource) if issue.severity in ("error", "fatal")]
        if issues:
            raise FhirError(422, issues)

    async def matches(
        self, request: FhirRequest, type_: str, pairs: Any, purpose: str, strict: bool = True
    ) -> list[StoredVersion]:
        """The resources a conditional interaction's search finds, among those the caller may
        search: none or one, else 412."""
        query = limited(request, parse_search(type_, pairs))
        if not query.clauses:
            raise FhirError.of(400, "invalid", f"{purpose} needs search criteria")
        if strict and query.unknown:
            unknown = ", ".join(query.unknown)
            raise FhirError.of(400, "invalid", f"{purpose}: unknown search parameter {unknown}")
        found = (await self.resources.search(query, count=2)).items
        if len(found) > 1:
            raise FhirError.of(412, "multiple-matches", f"{purpose} matched more than one resource")
        return list(found)


def _not_allowed(method: str, what: str) -> InteractionHandler:
    async def refuse(request: FhirRequest, target: Target) -> FhirResponse:
        raise FhirError.of(405, "not-supported", f"{method} is not supported on {what}")

    return refuse
