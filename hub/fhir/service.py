"""The FHIR interactions over a ``ResourceStore``: read, vread, create, update, patch, delete,
their conditional forms, search and history (``hub.fhir.search``), transaction and batch
Bundles (``hub.fhir.transaction``) and the operations (``hub.fhir.operations``).

``dispatch`` takes a ``FhirRequest`` and returns a ``FhirResponse`` or raises ``FhirError``;
the HTTP layer and transaction entries both go through it.
"""

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch
import orjson

from fhir_profiles.issues import Issue
from fhir_profiles.validation import validate
from hub.errors import ResourceGoneError, ResourceNotFoundError, SearchError, VersionConflictError
from hub.fhir.access import (
    authorize,
    check_replaceable,
    check_visible,
    check_writable,
    limited,
    reach,
)
from hub.fhir.audit import Auditor
from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import FhirError, outcome
from hub.fhir.paths import Target, checked_id, parse_path
from hub.fhir.responses import resource_response, write_response
from hub.fhir.scopes import UPDATE
from hub.fhir.shaping import shape, shaping
from hub.settings import FhirSettings
from store.query import parse_search
from store.resources import Resource, ResourceStore, StoredVersion

Handler = Callable[[FhirRequest, Target], Awaitable[FhirResponse]]


class FhirService:
    def __init__(
        self,
        resources: ResourceStore,
        settings: FhirSettings | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self.resources = resources
        self.settings = settings or FhirSettings()
        self.validate_input = self.settings.validate_input
        self.auditor = auditor
        # late imports keep each module small and free of cycles
        from hub.fhir import audit_api, operations, search, transaction

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
        try:
            target = parse_path(request.path)
            authorize(request, target)
            return await self._route(request, target)(request, target)
        except SearchError as exc:
            raise FhirError.of(400, "invalid", str(exc)) from exc
        except ResourceGoneError as exc:
            raise FhirError.of(410, "deleted", str(exc)) from exc
        except ResourceNotFoundError as exc:
            raise FhirError.of(404, "not-found", str(exc)) from exc

    def _route(self, request: FhirRequest, target: Target) -> Handler:
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
            return self._type_level(method, target)
        handlers: dict[str, Handler] = {
            "GET": self.read,
            "PUT": self.update,
            "PATCH": self.patch,
            "DELETE": self.delete,
        }
        return handlers.get(method) or _not_allowed(method, "a resource")

    def _system(self, method: str, target: Target) -> Handler:
        if target.history and method == "GET":
            return self.search.history
        if not target.history and method == "POST":
            return self.bundles.process
        return _not_allowed(method, "the server base")

    def _history(self, method: str, target: Target) -> Handler:
        if target.version is not None and method == "GET":
            return self.vread
        return self.search.history if method == "GET" else _not_allowed(method, "a history")

    def _type_level(self, method: str, target: Target) -> Handler:
        if target.search:
            return self.search.search if method == "POST" else _not_allowed(method, "_search")
        handlers: dict[str, Handler] = {
            "GET": self.search.search,
            "POST": self.create,
            "PUT": self.conditional_update,
            "PATCH": self.conditional_patch,
            "DELETE": self.conditional_delete,
        }
        return handlers.get(method) or _not_allowed(method, "a resource type")

    # --- reads ---
    async def read(self, request: FhirRequest, target: Target) -> FhirResponse:
        version = await self.resources.read(_type(target), _id(target))
        return self._read_response(request, version)

    async def vread(self, request: FhirRequest, target: Target) -> FhirResponse:
        version = await self.resources.vread(_type(target), _id(target), target.version or 0)
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

    # --- writes ---
    async def create(self, request: FhirRequest, target: Target) -> FhirResponse:
        type_ = _type(target)
        resource = self.checked_body(request, type_)
        if condition := request.header("if-none-exist"):
            existing = await self.matches(request, type_, _query_pairs(condition), "If-None-Exist")
            if existing:
                return write_response(request, existing[0], 200, "an existing resource matched")
        resource.pop("id", None)  # the server assigns the id of a create
        version = await self.resources.create(resource, id=request.assigned_id)
        return write_response(request, version, 201, f"created {type_}/{version.id}")

    async def update(self, request: FhirRequest, target: Target) -> FhirResponse:
        type_, id_ = _type(target), _id(target)
        resource = self.checked_body(request, type_)
        if "id" not in resource:
            raise FhirError.of(400, "required", "an update must carry the id in the body", "id")
        if checked_id(resource["id"]) != id_:
            raise FhirError.of(400, "invalid", f"body id {resource['id']!r} is not {id_!r}", "id")
        return await self._store_update(request, resource)

    async def _store_update(self, request: FhirRequest, resource: Resource) -> FhirResponse:
        if_match = _if_match(request)
        await self._check_replaceable(request, resource)
        try:
            result = await self.resources.update(resource, if_match=if_match)
        except VersionConflictError as exc:
            raise FhirError.of(412 if if_match is not None else 409, "conflict", str(exc)) from exc
        status = 201 if result.created else 200
        name = f"{resource['resourceType']}/{result.version.id}"
        return write_response(request, result.version, status, f"stored {name}")

    async def _check_replaceable(self, request: FhirRequest, resource: Resource) -> None:
        if reach(request, resource["resourceType"], UPDATE) is None:
            return  # the writer reaches every resource of the type
        try:
            current = await self.resources.read(resource["resourceType"], resource["id"])
        except (ResourceNotFoundError, ResourceGoneError):
            return
        check_replaceable(request, current)

    async def conditional_update(self, request: FhirRequest, target: Target) -> FhirResponse:
        type_ = _type(target)
        resource = self.checked_body(request, type_)
        found = await self.matches(request, type_, request.query, "conditional update")
        if found:
            if resource.get("id", found[0].id) != found[0].id:
                raise FhirError.of(400, "invalid", "the body id is not the matched one's", "id")
            return await self._store_update(request, {**resource, "id": found[0].id})
        if "id" in resource:  # nothing matched: the client's id is taken, as update-as-create
            return await self._store_update(request, {**resource, "id": checked_id(resource["id"])})
        return await self.create(request, target)

    async def patch(self, request: FhirRequest, target: Target) -> FhirResponse:
        current = await self.resources.read(_type(target), _id(target))
        return await self._apply_patch(request, current)

    async def conditional_patch(self, request: FhirRequest, target: Target) -> FhirResponse:
        found = await self.matches(request, _type(target), request.query, "conditional patch")
        if not found:
            raise FhirError.of(404, "not-found", "no resource matched the conditional patch")
        return await self._apply_patch(request, found[0])

    async def _apply_patch(self, request: FhirRequest, current: StoredVersion) -> FhirResponse:
        if not isinstance(request.body, list):
            raise FhirError.of(400, "invalid", "a JSON Patch body is a list of operations")
        resource = orjson.loads(current.body or b"{}")
        try:
            patched = jsonpatch.JsonPatch(request.body).apply(resource)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
            raise FhirError.of(422, "processing", f"the patch cannot be applied: {exc}") from exc
        if patched.get("resourceType") != current.type or patched.get("id") != current.id:
            raise FhirError.of(422, "processing", "a patch may not change resourceType or id")
        self.check_valid(patched)
        if_match = _if_match(request)
        expected = if_match if if_match is not None else current.version
        try:
            result = await self.resources.update(patched, if_match=expected)
        except VersionConflictError as exc:
            raise FhirError.of(412 if if_match is not None else 409, "conflict", str(exc)) from exc
        return write_response(request, result.version, 200, f"patched {current.type}/{current.id}")

    async def delete(self, request: FhirRequest, target: Target) -> FhirResponse:
        type_, id_ = _type(target), _id(target)
        try:
            deleted = await self.resources.delete(type_, id_, if_match=_if_match(request))
        except VersionConflictError as exc:
            raise FhirError.of(412, "conflict", str(exc)) from exc
        message = f"deleted {type_}/{id_}" if deleted else f"{type_}/{id_} was not there"
        headers = {"ETag": deleted.etag} if deleted else {}
        return FhirResponse(200, outcome(Issue("information", "informational", message)), headers)

    async def conditional_delete(self, request: FhirRequest, target: Target) -> FhirResponse:
        found = await self.matches(request, _type(target), request.query, "conditional delete")
        if not found:
            message = "no resource matched the conditional delete"
            return FhirResponse(200, outcome(Issue("information", "informational", message)))
        return await self.delete(request, Target(type=found[0].type, id=found[0].id))

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


def _type(target: Target) -> str:
    assert target.type is not None  # routing guarantees it
    return target.type


def _id(target: Target) -> str:
    assert target.id is not None
    return target.id


def _if_match(request: FhirRequest) -> int | None:
    header = request.header("if-match")
    if header is None:
        return None
    digits = header.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise FhirError.of(400, "invalid", f"If-Match {header!r} is not a version ETag")
    return int(digits)


def _query_pairs(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text.split("?", 1)[-1], keep_blank_values=True)


def _not_allowed(method: str, what: str) -> Handler:
    async def refuse(request: FhirRequest, target: Target) -> FhirResponse:
        raise FhirError.of(405, "not-supported", f"{method} is not supported on {what}")

    return refuse
