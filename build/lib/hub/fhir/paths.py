"""Which interaction a request path names, after the FHIR RESTful API's URL patterns."""

import re
from dataclasses import dataclass

from fhir_profiles.search_params import SUPPORTED_TYPES
from hub.fhir.outcome import FhirError

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # the FHIR id datatype


@dataclass(frozen=True)
class Target:
    """``Type/id/_history/vid``, ``Type/$op``, ``Type/id/$op``; empty parts are None."""

    type: str | None = None
    id: str | None = None
    history: bool = False
    version: int | None = None
    operation: str | None = None  # without the "$"
    search: bool = False  # Type/_search


def parse_path(path: str) -> Target:
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts:
        return Target()
    if parts[0] == "_history" and len(parts) == 1:
        return Target(history=True)
    if parts[0].startswith("$") and len(parts) == 1:
        return Target(operation=parts[0][1:])
    type_ = parts[0]
    if type_ not in SUPPORTED_TYPES:
        raise FhirError.of(404, "not-supported", f"resource type {type_!r} is not supported here")
    rest = parts[1:]
    if not rest:
        return Target(type=type_)
    if rest == ["_search"]:
        return Target(type=type_, search=True)
    if rest == ["_history"]:
        return Target(type=type_, history=True)
    if rest[0].startswith("$") and len(rest) == 1:
        return Target(type=type_, operation=rest[0][1:])
    id_ = _checked_id(rest[0])
    return _instance(type_, id_, rest[1:])


def _instance(type_: str, id_: str, rest: list[str]) -> Target:
    if not rest:
        return Target(type=type_, id=id_)
    if rest[0] == "_history" and len(rest) == 1:
        return Target(type=type_, id=id_, history=True)
    if rest[0] == "_history" and len(rest) == 2:
        if not rest[1].isdigit():
            raise FhirError.of(404, "not-found", f"version {rest[1]!r} is not a version number")
        return Target(type=type_, id=id_, history=True, version=int(rest[1]))
    if rest[0].startswith("$") and len(rest) == 1:
        return Target(type=type_, id=id_, operation=rest[0][1:])
    raise FhirError.of(404, "not-found", f"no such path: {'/'.join([type_, id_, *rest])}")


def _checked_id(id_: str) -> str:
    # "." and ".." fit the id datatype but name a path segment in a URL: a Location built
    # from them would resolve to another resource
    if not _ID.match(id_) or id_ in (".", ".."):
        raise FhirError.of(400, "invalid", f"{id_!r} is not a valid FHIR id")
    return id_


def checked_id(id_: object) -> str:
    if not isinstance(id_, str):
        raise FhirError.of(400, "invalid", "id must be a string", "id")
    return _checked_id(id_)
