"""The correlation id: what ties everything one message or one request caused together.

An HL7 v2 message's correlation id is its archive id; a FHIR API request's is the caller's
``X-Correlation-ID`` (or ``X-Request-ID``) when it sends a usable one, else a new id. The boundary
that takes the message in (the HTTP middleware, the bus consumer) sets it for the work it
starts, in a context variable, so it follows every ``await`` and every ``asyncio.to_thread``
without being passed by hand. What that work leaves behind carries it:

- every resource version the store writes: ``meta.source`` is ``urn:jianhu:system:<system>#<id>``
  (FHIR's place for "which system and which request made this version"), and the store keeps
  the id beside the version so ``jianhu trace`` finds them;
- the change sets the event relay publishes (one correlation per set), and so the writes the
  consumers of those events make;
- the log lines written meanwhile (``correlation_id``);
- the ledger's submissions built from those versions.
"""

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

SOURCE_PREFIX = "urn:jianhu:system:"
HEADERS = ("X-Correlation-ID", "X-Request-ID")  # read in this order; answered as the first
# What a caller's id may look like: it ends up in a URI fragment, a log line and a header.
_USABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# The hub's own ids (archive ids, ids it makes for requests) are UUIDs: a caller may not take
# one, or its writes would show in the trace of a message it did not send.
_HUBS_OWN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# What ``jianhu trace`` looks up: a correlation id, or an MSH-10 control id (HL7 ST, so any
# printable text), within reason.
MAX_TRACED_CHARS = 200
_SYSTEM_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Origin:
    """Who started the work (``LIS``, an API client) and the correlation id it runs under."""

    correlation: str
    system: str = ""

    @property
    def source(self) -> str:
        """``meta.source`` of a version written under this origin."""
        system = _SYSTEM_CHARS.sub("-", self.system).strip("-") or "unknown"
        return f"{SOURCE_PREFIX}{system}#{self.correlation}"


_current: ContextVar[Origin | None] = ContextVar("jianhu_origin", default=None)


def current() -> Origin | None:
    return _current.get()


@contextmanager
def within(origin: Origin | None) -> Iterator[None]:
    """Run the block (and the tasks and threads it starts) under ``origin``."""
    token = _current.set(origin)
    try:
        yield
    finally:
        _current.reset(token)


def usable(value: str | None) -> str | None:
    """A caller's correlation id if it can be used as one as it is, else None (a new id is
    made: an id with spaces, slashes or 500 characters would be refused nowhere but traced
    badly everywhere)."""
    if value and _USABLE.fullmatch(value) and not _HUBS_OWN.fullmatch(value):
        return value
    return None


def traceable(value: str) -> str | None:
    """An id to look a trace up by, or None: not empty, not over MAX_TRACED_CHARS, no control
    characters."""
    if 0 < len(value) <= MAX_TRACED_CHARS and value.isprintable():
        return value
    return None


def system_of(resource: Mapping[str, Any]) -> str:
    """Who wrote a stored version, from its ``meta.source`` ("" when the hub did not stamp it)."""
    source = (resource.get("meta") or {}).get("source")
    if isinstance(source, str) and source.startswith(SOURCE_PREFIX):
        return source.removeprefix(SOURCE_PREFIX).partition("#")[0]
    return ""


def from_headers(headers: Mapping[str, str]) -> str | None:
    for name in HEADERS:
        if found := usable(headers.get(name)):
            return found
    return None


def of_resource(resource: Mapping[str, Any]) -> str | None:
    """The correlation id a stored version was written under, from its ``meta.source``."""
    source = (resource.get("meta") or {}).get("source")
    if isinstance(source, str) and source.startswith(SOURCE_PREFIX) and "#" in source:
        return source.rpartition("#")[2] or None
    return None
