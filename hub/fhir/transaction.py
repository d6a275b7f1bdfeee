"""Transaction and batch Bundles.

A batch runs its entries one by one, each with its own outcome. A transaction is atomic: ids
of new resources are chosen first, ``urn:uuid`` and conditional references (``Patient?
identifier=...``) are resolved, conditional creates and updates are matched, and then every
write runs inside one store transaction in the order the spec gives (DELETE, POST, PUT, PATCH);
reads run after the commit. Any failing entry rolls the whole Bundle back.
"""

import asyncio
import base64
import binascii
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from hub.base.envelope import new_id
from hub.base.errors import VersionConflictError
from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import FhirError, outcome
from hub.fhir.paths import Target, parse_path
from hub.fhir.search import bundle
from hub.fhir.writes import PreparedWrite, conflict
from store.index import instant

if TYPE_CHECKING:
    from hub.fhir.service import FhirService

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 3, "GET": 4, "HEAD": 4}
_HEADERS = {
    "ifMatch": "if-match",
    "ifNoneMatch": "if-none-match",
    "ifNoneExist": "if-none-exist",
    "ifModifiedSince": "if-modified-since",
}


@dataclass
class Entry:
    position: int
    full_url: str | None
    request: FhirRequest


class Budget:
    """What one Bundle may cost: the size of its answer and the time it runs. Each entry's
    answer is serialised as soon as it is known, so its size is exact and what is held in
    memory is compact bytes; an entry that overdraws either stops the Bundle with 413."""

    def __init__(self, max_bytes: int, max_s: float) -> None:
        self.max_bytes, self.max_s = max_bytes, max_s
        self.spent_bytes = 0
        self.deadline = time.monotonic() + max_s

    def charge(self, answer: bytes) -> None:
        self.spent_bytes += len(answer)
        if self.spent_bytes > self.max_bytes:
            raise FhirError.of(
                413,
                "too-costly",
                f"the answer would exceed {self.max_bytes} bytes: split the Bundle or narrow "
                "its searches",
            )
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise FhirError.of(
                413, "too-costly", f"the Bundle ran longer than {self.max_s:g} s: split it"
            )


class BundleProcessor:
    def __init__(self, service: "FhirService") -> None:
        self.service = service

    async def process(self, request: FhirRequest, target: Target) -> FhirResponse:
        body = request.body
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            raise FhirError.of(
                400, "invalid", "POST to the base takes a transaction or batch Bundle"
            )
        kind = body.get("type")
        if kind not in ("transaction", "batch"):
            raise FhirError.of(400, "invalid", f"Bundle.type {kind!r}: use transaction or batch")
        raw_entries = body.get("entry") or []
        limits = self.service.settings
        if not isinstance(raw_entries, list) or len(raw_entries) > limits.max_bundle_entries:
            raise FhirError.of(
                413, "too-costly", f"Bundle.entry: a list of at most {limits.max_bundle_entries}"
            )
        entries = [_entry(request, position, raw) for position, raw in enumerate(raw_entries)]
        budget = Budget(limits.max_response_bytes, limits.max_request_s)
        if kind == "batch":
            answers = [await self._batch_entry(entry, budget) for entry in entries]
        else:
            responses = await self._transaction(entries, budget)
            answers = [_answer(response, budget) for response in responses]
        result = bundle(f"{kind}-response", answers, [])
        del result["link"]
        return FhirResponse(200, result)

    async def _batch_entry(self, entry: Entry, budget: Budget) -> orjson.Fragment:
        await asyncio.sleep(0)  # let the event loop serve others between entries
        budget.check_time()
        try:
            response = await self.service.dispatch(entry.request)
        except FhirError as exc:
            response = FhirResponse(exc.status, outcome(*exc.issues))
        return _answer(response, budget)

    async def _transaction(self, entries: list[Entry], budget: Budget) -> list[FhirResponse]:
        try:
            responses = await self._transaction_entries(entries, budget)
        except FhirError as exc:
            # nothing was written: every entry's AuditEvent says it failed, with the status
            for entry in entries:
                self.service.audit_interaction(entry.request, exc.status, None)
            raise
        for entry, response in zip(entries, responses, strict=True):
            location = response.headers.get("Location")
            self.service.audit_interaction(entry.request, response.status, location)
        return responses

    async def _transaction_entries(
        self, entries: list[Entry], budget: Budget
    ) -> list[FhirResponse]:
        mapping = await self._assign_ids(entries)
        for entry in entries:
            if entry.request.body is not None and entry.request.method in ("POST", "PUT"):
                body = await self._resolve_references(entry, entry.request.body, mapping)
                entry.request = replace(entry.request, body=body)
        _refuse_duplicates(entries)
        ordered = sorted(entries, key=lambda e: (ORDER[e.request.method], e.position))
        prepared: list[tuple[Entry, PreparedWrite]] = []
        for entry in ordered:
            if entry.request.method in ("GET", "HEAD"):
                continue
            await asyncio.sleep(0)
            budget.check_time()
            with _at(entry):
                ready = await self.service.prepare(entry.request)
            if ready is not None:
                prepared.append((entry, ready))
        responses = await self._commit(prepared)
        for entry in ordered:  # the reads (and operations) see what the transaction wrote
            if entry.position not in responses:
                await asyncio.sleep(0)
                budget.check_time()
                with _at(entry):
                    responses[entry.position] = await self.service.run(entry.request)
        return [responses[position] for position in range(len(entries))]

    async def _commit(self, prepared: list[tuple[Entry, PreparedWrite]]) -> dict[int, FhirResponse]:
        """Every write of the transaction as one plan of the store: all or nothing."""
        planned = [(entry, ready) for entry, ready in prepared if ready.write is not None]
        writes = [ready.write for _, ready in planned if ready.write is not None]
        try:
            written = await self.service.resources.apply(writes)
        except VersionConflictError as exc:
            failed = next(e for e, ready in planned if ready.write and ready.write.key == exc.key)
            with _at(failed):
                raise conflict(exc, writes) from exc
        await self.service.terminology.written(write.type for write in writes)
        outcomes = {entry.position: done for (entry, _), done in zip(planned, written, strict=True)}
        return {
            entry.position: ready.answer(outcomes.get(entry.position)) for entry, ready in prepared
        }

    async def _assign_ids(self, entries: list[Entry]) -> dict[str, str]:
        """fullUrl -> ``Type/id`` for every entry that creates or names a resource."""
        mapping: dict[str, str] = {}
        for entry in entries:
            request, target = entry.request, parse_path(entry.request.path)
            if request.method == "POST" and target.type and target.id is None:
                reference = await self._post_target(entry, target.type)
            elif request.method == "PUT" and target.type and target.id is None:
                reference = await self._conditional_put_target(entry, target.type)
            elif target.type and target.id:
                reference = f"{target.type}/{target.id}"
            else:
                continue
            if entry.full_url:
                mapping[entry.full_url] = reference
        return mapping

    async def _post_target(self, entry: Entry, type_: str) -> str:
        condition = entry.request.header("if-none-exist")
        if condition:
            pairs = parse_qsl(condition.split("?", 1)[-1], keep_blank_values=True)
            found = await self.service.matches(
                entry.request, type_, pairs, f"entry {entry.position} ifNoneExist"
            )
            if found:
                return f"{type_}/{found[0].id}"  # the create is skipped at dispatch time
        entry.request = replace(entry.request, assigned_id=new_id())
        return f"{type_}/{entry.request.assigned_id}"

    async def _conditional_put_target(self, entry: Entry, type_: str) -> str:
        found = await self.service.matches(
            entry.request, type_, entry.request.query, f"entry {entry.position} conditional update"
        )
        body = entry.request.body if isinstance(entry.request.body, dict) else {}
        id_ = found[0].id if found else body.get("id") or new_id()
        entry.request = replace(
            entry.request, path=f"{type_}/{id_}", query=(), body={**body, "id": id_}
        )
        return f"{type_}/{id_}"

    async def _resolve_references(self, entry: Entry, node: Any, mapping: dict[str, str]) -> Any:
        if isinstance(node, list):
            return [await self._resolve_references(entry, item, mapping) for item in node]
        if not isinstance(node, dict):
            return node
        resolved = {
            key: await self._resolve_references(entry, v, mapping) for key, v in node.items()
        }
        reference = node.get("reference")
        if isinstance(reference, str):
            resolved["reference"] = await self._resolve_reference(entry, reference, mapping)
        return resolved

    async def _resolve_reference(
        self, entry: Entry, reference: str, mapping: dict[str, str]
    ) -> str:
        if reference in mapping:
            return mapping[reference]
        if reference.startswith("urn:uuid:"):
            raise FhirError.of(
                400, "not-found", f"Bundle.entry[{entry.position}]: {reference} names no entry"
            )
        if "?" in reference and not reference.startswith(("http:", "https:")):
            type_, _, criteria = reference.partition("?")
            pairs = parse_qsl(criteria, keep_blank_values=True)
            found = await self.service.matches(
                entry.request, type_, pairs, f"reference {reference}"
            )
            if not found:
                raise FhirError.of(
                    404, "not-found", f"Bundle.entry[{entry.position}]: {reference} matched nothing"
                )
            return f"{type_}/{found[0].id}"
        return reference


@contextmanager
def _at(entry: Entry) -> Iterator[None]:
    """A failing entry fails the transaction, its diagnostics naming the entry."""
    try:
        yield
    except FhirError as exc:
        where = f"Bundle.entry[{entry.position}]"
        issues = [replace(i, diagnostics=f"{where}: {i.diagnostics}") for i in exc.issues]
        raise FhirError(exc.status, issues) from exc


def _entry(request: FhirRequest, position: int, raw: Any) -> Entry:
    where = f"Bundle.entry[{position}]"
    call = raw.get("request") if isinstance(raw, dict) else None
    if not isinstance(call, dict) or call.get("method") not in METHODS or not call.get("url"):
        raise FhirError.of(400, "required", f"{where}.request needs a method and a url", where)
    method = "GET" if call["method"] == "HEAD" else call["method"]
    url = urlsplit(str(call["url"]).removeprefix(request.base))
    path = url.path.strip("/")
    if not path and method == "POST":
        # a Bundle inside a Bundle would multiply the limits on entries, time and size
        raise FhirError.of(400, "not-supported", f"{where}: a Bundle entry cannot post a Bundle")
    headers = {_HEADERS[key]: str(value) for key, value in call.items() if key in _HEADERS}
    body = raw.get("resource")
    if method == "PATCH":
        body = _patch_body(body, where)
    sub = FhirRequest(
        method=method,
        path=path,
        principal=request.principal,  # every entry is the caller's own request
        query=tuple(parse_qsl(url.query, keep_blank_values=True)),
        headers={**request.headers, **headers},
        body=body,
        base=request.base,
    )
    full_url = raw.get("fullUrl")
    return Entry(position, full_url if isinstance(full_url, str) else None, sub)


def _patch_body(body: Any, where: str) -> Any:
    """A transaction carries a JSON Patch as a Binary resource (base64 data)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Binary":
        raise FhirError.of(400, "invalid", f"{where}: a PATCH entry carries a Binary JSON Patch")
    try:
        return orjson.loads(base64.b64decode(body.get("data", ""), validate=True))
    except (binascii.Error, orjson.JSONDecodeError) as exc:
        raise FhirError.of(400, "invalid", f"{where}: the Binary is not a JSON Patch") from exc


def _refuse_duplicates(entries: list[Entry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.request.method in ("PUT", "PATCH", "DELETE") and not entry.request.query:
            if entry.request.path in seen:
                raise FhirError.of(
                    400, "invalid", f"Bundle.entry[{entry.position}]: {entry.request.path} twice"
                )
            seen.add(entry.request.path)


def _answer(response: FhirResponse, budget: Budget) -> orjson.Fragment:
    """The entry of the answering Bundle, serialised now and charged to the budget."""
    answer = orjson.dumps(_response_entry(response))
    budget.charge(answer)
    return orjson.Fragment(answer)


def _response_entry(response: FhirResponse) -> dict[str, Any]:
    status = f"{response.status} {HTTPStatus(response.status).phrase}"
    answer: dict[str, Any] = {"status": status}
    if location := response.headers.get("Location"):
        answer["location"] = location
    if etag := response.headers.get("ETag"):
        answer["etag"] = etag
    if modified := response.headers.get("Last-Modified"):
        answer["lastModified"] = instant(parsedate_to_datetime(modified))
    entry: dict[str, Any] = {"response": answer}
    body = response.body
    if isinstance(body, bytes):
        body = orjson.Fragment(body)
    if body is not None and response.status >= 400:
        answer["outcome"] = body
    elif body is not None:
        entry["resource"] = body
    return entry
