"""Search and history Bundles: paging links with opaque cursors, ``_include``/``_revinclude``
(with ``:iterate`` one level), ``_summary``, ``_elements``, ``_total`` and unknown parameters
reported in an OperationOutcome entry (or refused under ``Prefer: handling=strict``)."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from fhir_profiles.issues import Issue
from fhir_profiles.search_params import SearchParam, params_for
from hub.base.envelope import new_id
from hub.base.hospital_time import given
from hub.fhir.access import limited, reach, visible
from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import FhirError, outcome
from hub.fhir.paths import Target
from hub.fhir.scopes import SEARCH
from hub.fhir.shaping import shape, shaping
from store.index import instant
from store.query import MAX_VALUES, parse_search
from store.resources import StoredVersion

if TYPE_CHECKING:
    from hub.fhir.service import FhirService

DEFAULT_COUNT, MAX_COUNT = 50, 1000
INCLUDE_LIMIT = 1000  # included resources per page, so one search cannot read the whole store
TOTAL_MODES = ("none", "estimate", "accurate")


def bundle(kind: str, entries: list[Any], links: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": new_id(),
        "meta": {"lastUpdated": instant(datetime.now(UTC))},
        "type": kind,
        "link": links,
        "entry": entries,
    }


def page_size(query: tuple[tuple[str, str], ...]) -> int:
    raw = dict(query).get("_count")
    if raw is None:
        return DEFAULT_COUNT
    if not raw.isdigit():
        raise FhirError.of(400, "invalid", "_count must be a whole number")
    return min(int(raw), MAX_COUNT)


def links(request: FhirRequest, path: str, next_cursor: str | None) -> list[dict[str, str]]:
    pairs = [(key, value) for key, value in request.query if key != "_cursor"]
    url = f"{request.base}/{path}" if path else request.base
    found = [{"relation": "self", "url": _with_query(url, list(request.query))}]
    if next_cursor is not None:
        found.append(
            {"relation": "next", "url": _with_query(url, [*pairs, ("_cursor", next_cursor)])}
        )
    return found


def _with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    return f"{url}?{urlencode(pairs)}" if pairs else url


class Searcher:
    def __init__(self, service: "FhirService") -> None:
        self.service = service
        self.resources = service.resources

    async def search(self, request: FhirRequest, target: Target) -> FhirResponse:
        type_ = target.type or ""
        query = limited(request, parse_search(type_, request.query))
        _check_includes(request.query)
        if query.unknown and request.prefer("handling") == "strict":
            unknown = ", ".join(query.unknown)
            raise FhirError.of(400, "not-supported", f"unknown search parameter: {unknown}")
        summary, names = shaping(request.query)
        count, options = page_size(request.query), dict(request.query)
        if summary == "count" or count == 0:
            result = bundle("searchset", [], links(request, type_, None))
            result["total"] = await self.resources.count(query)
            return FhirResponse(200, result)
        page = await self.resources.search(query, count=count, cursor=options.get("_cursor"))
        matches = [v for v in page.items if visible(request, v)]
        included = [v for v in await self.includes(request, matches) if visible(request, v)]
        entries = [self._entry(request, v, "match", summary, names) for v in matches]
        entries += [self._entry(request, v, "include", summary, names) for v in included]
        if query.unknown:
            entries.append(_unknown_entry(query.unknown))
        result = bundle("searchset", entries, links(request, type_, page.next_cursor))
        first_page = "_cursor" not in options
        total = await self._total(options.get("_total"), query, page, len(matches), first_page)
        if total is not None:
            result["total"] = total
        return FhirResponse(200, result)

    async def _total(
        self, mode: str | None, query: Any, page: Any, found: int, first_page: bool
    ) -> int | None:
        if mode is not None and mode not in TOTAL_MODES:
            raise FhirError.of(400, "invalid", f"_total must be one of {TOTAL_MODES}")
        if mode in ("accurate", "estimate"):
            return await self.resources.count(query)
        if mode is None and page.next_cursor is None and first_page:
            return found  # the whole result is on this page: the total is known for free
        return None

    def _entry(
        self,
        request: FhirRequest,
        version: StoredVersion,
        mode: str,
        summary: str | None,
        names: tuple[str, ...] | None,
    ) -> dict[str, Any]:
        return {
            "fullUrl": f"{request.base}/{version.type}/{version.id}",
            "resource": shape(version.body or b"{}", summary, names),
            "search": {"mode": mode},
        }

    # --- _include and _revinclude ---
    async def includes(
        self, request: FhirRequest, matches: list[StoredVersion]
    ) -> list[StoredVersion]:
        seen = {(v.type, v.id) for v in matches}
        found: list[StoredVersion] = []
        current = matches
        for iterate in (False, True):
            new = await self._include_round(request, current, iterate, seen)
            found.extend(new)
            current = new
            if not new:
                break
        return found[:INCLUDE_LIMIT]

    async def _include_round(
        self,
        request: FhirRequest,
        sources: list[StoredVersion],
        iterate: bool,
        seen: set[tuple[str, str]],
    ) -> list[StoredVersion]:
        wanted: list[tuple[str, str]] = []
        revincluded: list[StoredVersion] = []
        for key, value in request.query:
            name, _, modifier = key.partition(":")
            if (modifier == "iterate") != iterate or name not in ("_include", "_revinclude"):
                continue
            if name == "_include":
                wanted.extend(_references(sources, value))
            else:
                revincluded.extend(await self._revinclude(request, sources, value))
        keys = [key for key in dict.fromkeys(wanted) if key not in seen]
        found = [*(await self.resources.read_many(keys[:INCLUDE_LIMIT])), *revincluded]
        fresh = []
        for version in found:
            if (version.type, version.id) not in seen:
                seen.add((version.type, version.id))
                fresh.append(version)
        return fresh

    async def _revinclude(
        self, request: FhirRequest, sources: list[StoredVersion], spec: str
    ) -> list[StoredVersion]:
        source_type, param = _include_spec(spec)
        try:
            compartment = reach(request, source_type, SEARCH)
        except FhirError:
            return []  # the caller may not search that type: nothing of it is included
        found: list[StoredVersion] = []
        targets = [f"{v.type}/{v.id}" for v in sources]
        for start in range(0, len(targets), MAX_VALUES):
            if len(found) >= INCLUDE_LIMIT:
                break
            chunk = ",".join(targets[start : start + MAX_VALUES])
            query = replace(
                parse_search(source_type, [(param.code, chunk)]), compartment=compartment
            )
            page = await self.resources.search(query, count=INCLUDE_LIMIT - len(found))
            found.extend(page.items)
        return found

    # --- history ---
    async def history(self, request: FhirRequest, target: Target) -> FhirResponse:
        options = dict(request.query)
        since = _since(options.get("_since"))
        count = page_size(request.query) or DEFAULT_COUNT
        page = await self.resources.history(
            target.type, target.id, since, count, options.get("_cursor")
        )
        path = "/".join(part for part in (target.type, target.id, "_history") if part)
        entries = [_history_entry(request.base, version) for version in page.items]
        return FhirResponse(200, bundle("history", entries, links(request, path, page.next_cursor)))


def _check_includes(query: tuple[tuple[str, str], ...]) -> None:
    """Every ``_include``/``_revinclude`` names a reference parameter that exists (one that
    starts from another type than the matches' is valid and includes nothing); a misspelt one
    is refused, not ignored."""
    for key, value in query:
        name, _, modifier = key.partition(":")
        if name not in ("_include", "_revinclude"):
            continue
        if modifier not in ("", "iterate", "recurse"):
            raise FhirError.of(400, "invalid", f"{key}: the modifier is :iterate or nothing")
        if value == "*" and name == "_include":
            continue
        _, param = _include_spec(value)
        target_type = value.split(":")[2] if value.count(":") >= 2 else None
        if target_type is not None and target_type not in param.targets:
            raise FhirError.of(400, "invalid", f"{value!r}: {param.code} cannot point to that type")


def _include_spec(spec: str) -> tuple[str, SearchParam]:
    source_type, _, rest = spec.partition(":")
    code = rest.partition(":")[0]
    param = params_for(source_type).get(code)
    if param is None or param.type != "reference":
        raise FhirError.of(400, "invalid", f"{spec!r}: not a reference search parameter")
    return source_type, param


def _references(sources: list[StoredVersion], spec: str) -> list[tuple[str, str]]:
    """``Type:param[:Target]`` or ``*``: the ``(type, id)`` pairs the sources refer to."""
    wanted = []
    for version in sources:
        params = _include_params(version.type, spec)
        if not params:
            continue
        resource = orjson.loads(version.body or b"{}")
        for param, target_type in params:
            for value in param.walker(resource):
                reference = value.get("reference") if isinstance(value, dict) else None
                kind, _, id_ = (reference or "").partition("/")
                if id_ and "/" not in id_ and target_type in (None, kind):
                    wanted.append((kind, id_))
    return wanted


def _include_params(type_: str, spec: str) -> list[tuple[SearchParam, str | None]]:
    if spec == "*":
        return [(p, None) for p in params_for(type_).values() if p.type == "reference"]
    source_type, _, rest = spec.partition(":")
    if source_type != type_:
        return []
    code, _, target_type = rest.partition(":")
    _, param = _include_spec(f"{source_type}:{code}")
    return [(param, target_type or None)]


def _unknown_entry(unknown: tuple[str, ...]) -> dict[str, Any]:
    issue = Issue(
        "warning", "not-supported", f"ignored unknown search parameter(s): {', '.join(unknown)}"
    )
    return {"resource": outcome(issue), "search": {"mode": "outcome"}}


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FhirError.of(400, "invalid", f"_since {raw!r} is not an instant") from exc
    return given(moment)


def _history_entry(base: str, version: StoredVersion) -> dict[str, Any]:
    url = f"{version.type}/{version.id}"
    method = "DELETE" if version.deleted else ("POST" if version.version == 1 else "PUT")
    entry: dict[str, Any] = {
        "fullUrl": f"{base}/{url}",
        "request": {"method": method, "url": url if method != "POST" else version.type},
        "response": {
            "status": "200" if version.version > 1 else "201",
            "etag": version.etag,
            "lastModified": instant(version.last_updated),
        },
    }
    if version.body is not None:
        entry["resource"] = orjson.Fragment(version.body)
    return entry
