"""The write interactions (create, update, patch, delete and their conditional forms), each in
two halves: ``prepare`` checks the request and says what to write (a ``Write`` of the store's
plans) and how to answer once it is written. A single request is a plan of one write; a
transaction Bundle prepares every entry and hands the store one plan, so an entry is checked
exactly as the same request alone would be."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import jsonpatch
import orjson

from fhir_profiles.issues import Issue
from hub.base.envelope import new_id
from hub.base.errors import ResourceGoneError, ResourceNotFoundError, VersionConflictError
from hub.fhir.access import check_replaceable, reach
from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import FhirError, outcome
from hub.fhir.paths import Target, checked_id
from hub.fhir.responses import write_response
from hub.fhir.scopes import UPDATE
from store.plan import Write, WriteMode, Written
from store.resources import Resource, StoredVersion

if TYPE_CHECKING:
    from hub.fhir.service import FhirService

Respond = Callable[[Written | None], FhirResponse]


@dataclass(frozen=True)
class PreparedWrite:
    write: Write | None  # None: nothing to write (an If-None-Exist that matched)
    answer: Respond  # the response, from what the write did


Preparer = Callable[[FhirRequest, Target], Awaitable[PreparedWrite]]


class Writes:
    def __init__(self, service: "FhirService") -> None:
        self.service = service
        self.resources = service.resources

    def preparer(self, method: str, target: Target) -> Preparer | None:
        """The preparer of a resource write, or None when the request is something else."""
        if target.type in (None, "AuditEvent") or target.operation or target.history:
            return None
        if target.id is None:
            if target.search:
                return None
            by_method = {
                "POST": self.create,
                "PUT": self.conditional_update,
                "PATCH": self.conditional_patch,
                "DELETE": self.conditional_delete,
            }
        else:
            by_method = {"PUT": self.update, "PATCH": self.patch, "DELETE": self.delete}
        return by_method.get(method)

    async def commit(self, request: FhirRequest, prepared: PreparedWrite) -> FhirResponse:
        """Write one prepared interaction as a plan of its own and answer it."""
        if prepared.write is None:
            return prepared.answer(None)
        try:
            (written,) = await self.resources.apply([prepared.write])
        except VersionConflictError as exc:
            raise conflict(exc, [prepared.write]) from exc
        await self.service.terminology.written([prepared.write.type])
        return prepared.answer(written)

    # --- create ---
    async def create(self, request: FhirRequest, target: Target) -> PreparedWrite:
        type_ = _type(target)
        resource = self.service.checked_body(request, type_)
        if condition := request.header("if-none-exist"):
            pairs = parse_qsl(condition.split("?", 1)[-1], keep_blank_values=True)
            existing = await self.service.matches(request, type_, pairs, "If-None-Exist")
            if existing:
                found = existing[0]
                return PreparedWrite(
                    None,
                    lambda _: write_response(request, found, 200, "an existing resource matched"),
                )
        resource.pop("id", None)  # the server assigns the id of a create
        id_ = request.assigned_id or new_id()
        write = Write(WriteMode.CREATE, type_, id_, {**resource, "id": id_})
        return PreparedWrite(write, lambda done: _written(request, done, 201, "created"))

    # --- update ---
    async def update(self, request: FhirRequest, target: Target) -> PreparedWrite:
        type_, id_ = _type(target), _id(target)
        resource = self.service.checked_body(request, type_)
        if "id" not in resource:
            raise FhirError.of(400, "required", "an update must carry the id in the body", "id")
        if checked_id(resource["id"]) != id_:
            raise FhirError.of(400, "invalid", f"body id {resource['id']!r} is not {id_!r}", "id")
        return await self._replace(request, resource)

    async def conditional_update(self, request: FhirRequest, target: Target) -> PreparedWrite:
        type_ = _type(target)
        resource = self.service.checked_body(request, type_)
        found = await self.service.matches(request, type_, request.query, "conditional update")
        if found:
            if resource.get("id", found[0].id) != found[0].id:
                raise FhirError.of(400, "invalid", "the body id is not the matched one's", "id")
            return await self._replace(request, {**resource, "id": found[0].id})
        if "id" in resource:  # nothing matched: the client's id is taken, as update-as-create
            return await self._replace(request, {**resource, "id": checked_id(resource["id"])})
        return await self.create(request, target)

    async def _replace(self, request: FhirRequest, resource: Resource) -> PreparedWrite:
        await self._check_replaceable(request, resource)
        write = Write.of(WriteMode.REPLACE, resource, if_match=if_match(request))

        def answer(done: Written | None) -> FhirResponse:
            status = 201 if done is not None and done.created else 200
            return _written(request, done, status, "stored")

        return PreparedWrite(write, answer)

    async def _check_replaceable(self, request: FhirRequest, resource: Resource) -> None:
        if reach(request, resource["resourceType"], UPDATE) is None:
            return  # the writer reaches every resource of the type
        try:
            current = await self.resources.read(resource["resourceType"], resource["id"])
        except (ResourceNotFoundError, ResourceGoneError):
            return
        check_replaceable(request, current)

    # --- patch ---
    async def patch(self, request: FhirRequest, target: Target) -> PreparedWrite:
        current = await self.resources.read(_type(target), _id(target))
        return self._patched(request, current)

    async def conditional_patch(self, request: FhirRequest, target: Target) -> PreparedWrite:
        found = await self.service.matches(
            request, _type(target), request.query, "conditional patch"
        )
        if not found:
            raise FhirError.of(404, "not-found", "no resource matched the conditional patch")
        return self._patched(request, found[0])

    def _patched(self, request: FhirRequest, current: StoredVersion) -> PreparedWrite:
        """The patch applied to the version read: written only from that version, so a
        change in between is a conflict, not a lost update."""
        if not isinstance(request.body, list):
            raise FhirError.of(400, "invalid", "a JSON Patch body is a list of operations")
        resource = orjson.loads(current.body or b"{}")
        try:
            patched = jsonpatch.JsonPatch(request.body).apply(resource)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
            raise FhirError.of(422, "processing", f"the patch cannot be applied: {exc}") from exc
        if patched.get("resourceType") != current.type or patched.get("id") != current.id:
            raise FhirError.of(422, "processing", "a patch may not change resourceType or id")
        self.service.check_valid(patched)
        expected = if_match(request)
        write = Write.of(
            WriteMode.REPLACE,
            patched,
            if_match=expected if expected is not None else current.version,
        )
        return PreparedWrite(write, lambda done: _written(request, done, 200, "patched"))

    # --- delete ---
    async def delete(self, request: FhirRequest, target: Target) -> PreparedWrite:
        type_, id_ = _type(target), _id(target)
        write = Write.delete(type_, id_, if_match=if_match(request))

        def answer(done: Written | None) -> FhirResponse:
            deleted = done.version if done is not None else None
            message = f"deleted {type_}/{id_}" if deleted else f"{type_}/{id_} was not there"
            headers = {"ETag": deleted.etag} if deleted else {}
            return FhirResponse(
                200, outcome(Issue("information", "informational", message)), headers
            )

        return PreparedWrite(write, answer)

    async def conditional_delete(self, request: FhirRequest, target: Target) -> PreparedWrite:
        found = await self.service.matches(
            request, _type(target), request.query, "conditional delete"
        )
        if not found:
            message = "no resource matched the conditional delete"
            response = FhirResponse(200, outcome(Issue("information", "informational", message)))
            return PreparedWrite(None, lambda _: response)
        return await self.delete(request, Target(type=found[0].type, id=found[0].id))


def conflict(exc: VersionConflictError, writes: list[Write]) -> FhirError:
    """412 when the write that failed named the version it expected (If-Match), else 409."""
    expected = any(w.if_match is not None and w.key == exc.key for w in writes)
    return FhirError.of(412 if expected else 409, "conflict", str(exc))


def _written(request: FhirRequest, done: Written | None, status: int, verb: str) -> FhirResponse:
    assert done is not None  # every create, update and patch writes or finds a version
    version = done.version
    assert version is not None
    message = f"{verb} {version.type}/{version.id}"
    if not done.changed:
        message += " (unchanged: the content was there already)"
    return write_response(request, version, status, message)


def if_match(request: FhirRequest) -> int | None:
    header = request.header("if-match")
    if header is None:
        return None
    digits = header.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise FhirError.of(400, "invalid", f"If-Match {header!r} is not a version ETag")
    return int(digits)


def _type(target: Target) -> str:
    assert target.type is not None  # routing guarantees it
    return target.type


def _id(target: Target) -> str:
    assert target.id is not None
    return target.id
