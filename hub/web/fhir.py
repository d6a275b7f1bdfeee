"""The FHIR R4 REST API under ``/fhir``: HTTP in, ``FhirRequest`` to the service, HTTP out.

JSON only (``application/fhir+json``); a client that accepts only XML gets 406 and an XML body
415. Bodies over ``JIANHU_FHIR__MAX_BODY_BYTES`` get 413 before they are read to the end.
"""

from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from hub.fhir.audit import Auditor, interaction_event
from hub.fhir.capability import capability_statement
from hub.fhir.interaction import JSON_TYPE, FhirRequest, FhirResponse
from hub.fhir.nesting import MAX_JSON_DEPTH, too_deep
from hub.fhir.outcome import FhirError, outcome
from hub.fhir.service import FhirService
from hub.settings import Role
from hub.web.auth import allow
from hub.web.bodies import read_body
from hub.web.keys import PRINCIPAL, RUNTIME

CONTENT_TYPE = f"{JSON_TYPE}; charset=utf-8"
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json")
_FORM = "application/x-www-form-urlencoded"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/fhir/metadata", metadata)
    app.router.add_route("*", "/fhir{tail:(/.*)?}", handle)


def base_url(request: web.Request) -> str:
    configured = request.app[RUNTIME].settings.fhir.base_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}/fhir"


async def metadata(request: web.Request) -> web.StreamResponse:
    """Public, as the spec expects: clients read it before they authenticate."""
    if _wants_xml(request):
        return _error(FhirError.of(406, "not-supported", "this server speaks FHIR JSON only"))
    return _respond(FhirResponse(200, capability_statement(base_url(request))))


@allow(Role.CLINICIAN, Role.SYSTEM, Role.OPS, Role.SCREEN)  # scopes narrow each one down
async def handle(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    try:
        fhir_request = await _fhir_request(request)
    except FhirError as exc:
        return _error(exc)
    service = FhirService(
        runtime.resources, runtime.settings.fhir, _auditor(request), runtime.terminology
    )
    try:
        response = await service.dispatch(fhir_request)
    except FhirError as exc:
        return _error(exc)
    return _respond(response)


def _auditor(request: web.Request) -> Auditor | None:
    trail = request.app[RUNTIME].audit
    if trail is None:
        return None
    remote = request.remote

    def record(fhir: FhirRequest, status: int, location: str | None) -> None:
        trail.record(interaction_event(fhir, status, location, remote))

    return record


async def _fhir_request(request: web.Request) -> FhirRequest:
    if _wants_xml(request):
        raise FhirError.of(406, "not-supported", "this server speaks FHIR JSON only")
    limit = request.app[RUNTIME].settings.fhir.max_query_bytes
    _check_query_size(len(request.rel_url.raw_query_string), limit)
    path = request.match_info["tail"].strip("/")
    query = tuple(request.query.items())
    body = None
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await _read_body(request)
        kind = request.content_type
        if path.endswith("_search") and kind == _FORM:
            _check_query_size(len(raw), limit)
            query += _form_pairs(raw)
        elif raw:
            body = _parse_json(raw, kind, request.method)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return FhirRequest(
        request.method,
        path,
        request[PRINCIPAL],
        query,
        headers,
        body,
        base_url(request),
    )


async def _read_body(request: web.Request) -> bytes:
    limit = request.app[RUNTIME].settings.fhir.max_body_bytes
    raw = await read_body(request, limit)
    if raw is None:
        raise FhirError.of(413, "too-costly", f"the body is over the limit of {limit} bytes")
    return raw


def _check_query_size(size: int, limit: int) -> None:
    if size > limit:
        raise FhirError.of(
            414, "too-long", f"the search criteria are over {limit} bytes: narrow the search"
        )


def _form_pairs(raw: bytes) -> tuple[tuple[str, str], ...]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FhirError.of(400, "invalid", "the _search form body is not UTF-8") from exc
    return tuple(parse_qsl(text, keep_blank_values=True))


def _parse_json(raw: bytes, kind: str, method: str) -> object:
    if method == "PATCH" and kind != "application/json-patch+json":
        raise FhirError.of(415, "not-supported", "PATCH takes application/json-patch+json")
    if kind and kind not in _JSON_TYPES and kind != "application/octet-stream":
        raise FhirError.of(415, "not-supported", f"{kind} bodies are not accepted: send JSON")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError.of(400, "invalid", f"the body is not valid JSON: {exc}") from exc
    if too_deep(body, MAX_JSON_DEPTH):
        raise FhirError.of(400, "too-costly", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


def _wants_xml(request: web.Request) -> bool:
    requested = request.query.get("_format")
    if requested:
        return "xml" in requested
    accepted = [part.split(";")[0].strip() for part in request.headers.get("Accept", "").split(",")]
    if any("json" in kind or kind in ("*/*", "application/*", "") for kind in accepted):
        return False
    return any("xml" in kind for kind in accepted)


def _respond(response: FhirResponse) -> web.Response:
    if response.status == 304 or response.body is None:
        return web.Response(status=response.status, headers=response.headers)
    return web.Response(
        status=response.status,
        body=response.body_bytes(),
        headers={**response.headers, "Content-Type": CONTENT_TYPE},
    )


def _error(exc: FhirError) -> web.Response:
    return _respond(FhirResponse(exc.status, outcome(*exc.issues), exc.headers))
