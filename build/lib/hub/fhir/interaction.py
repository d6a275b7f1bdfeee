"""A FHIR interaction as data: what the HTTP layer and transaction Bundle entries both hand to
``FhirService.dispatch``, so one code path serves a single request and a Bundle entry alike."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from hub.fhir.scopes import Principal

JSON_TYPE = "application/fhir+json"


@dataclass(frozen=True)
class FhirRequest:
    method: str  # GET POST PUT PATCH DELETE
    path: str  # relative to the base: "Patient/1/_history/2", "Observation", ""
    # the caller, always: a Bundle's entries carry the Bundle's caller, so nothing reaches the
    # store unauthorized by leaving it out
    principal: Principal
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None  # parsed JSON
    base: str = ""  # the server's base URL, for fullUrl, Location and paging links
    assigned_id: str | None = None  # a transaction's POST entry: the id chosen up front

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def prefer(self, key: str) -> str | None:
        """One token of the Prefer header: ``return`` or ``handling``."""
        for part in (self.header("prefer") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == key:
                return value.strip('"')
        return None


@dataclass
class FhirResponse:
    status: int
    body: Any = None  # a dict (may hold orjson.Fragment), raw JSON bytes, or None
    headers: dict[str, str] = field(default_factory=dict)

    def body_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return orjson.dumps(self.body)

    def body_fragment(self) -> Any:
        """The body for embedding in a Bundle without parsing it again."""
        return orjson.Fragment(self.body) if isinstance(self.body, bytes) else self.body

    def json(self) -> Any:
        """The body as JSON data (for Bundle entries that embed a response)."""
        if self.body is None or isinstance(self.body, dict):
            return self.body
        return orjson.loads(self.body)
