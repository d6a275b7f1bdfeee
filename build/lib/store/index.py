"""Search-index extraction, shared by every backend: a resource in, typed index rows out.

Run once per write; each backend stores the rows in its own way (SQLite tables, MongoDB
sub-documents) and compiles the same parsed query against them. Strings are normalised the way
FHIR's default string search compares (case- and accent-insensitive); dates become the closed
range [lo, hi] their precision covers, so ``2020`` matches all of 2020.
"""

import calendar
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from fhir_profiles.fhirpath import CHOICE_SUFFIXES
from fhir_profiles.search_params import SearchParam, params_for

# param, first component (a token: system, code), second component (system, code, lo, hi)
CompositeRow = tuple[str, str | None, str | None, str | None, str | None, Any, Any]


@dataclass
class IndexRows:
    """Every index value of one resource, by kind: tuples that start with the parameter code."""

    token: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # system, code
    token_text: list[tuple[str, str]] = field(default_factory=list)  # display/text for :text
    string: list[tuple[str, str, str]] = field(default_factory=list)  # normalised, exact
    date: list[tuple[str, str, str]] = field(default_factory=list)  # lo, hi (UTC instants)
    reference: list[tuple[str, str]] = field(default_factory=list)  # "Type/id" or URL
    quantity: list[tuple[str, float, str | None, str | None]] = field(default_factory=list)
    number: list[tuple[str, float]] = field(default_factory=list)
    uri: list[tuple[str, str]] = field(default_factory=list)
    composite: list[CompositeRow] = field(default_factory=list)


@cache
def stored_params(resource_type: str) -> tuple[SearchParam, ...]:
    """The parameters with index rows of their own: not those that repeat others' values
    (``SearchParam.stored_as``), nor ``_id``, which a query reads from the resource itself."""
    return tuple(
        param
        for param in params_for(resource_type).values()
        if not param.stored_as and param.code != "_id"
    )


@lru_cache(maxsize=16384)  # names, codes' displays and units repeat across resources
def normalise(text: str) -> str:
    """Case- and accent-insensitive form used by FHIR's default string matching."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def extract(resource: dict[str, Any]) -> IndexRows:
    rows = IndexRows()
    present = element_names(resource)
    for param in stored_params(resource.get("resourceType", "")):
        if param.heads is not None and param.heads.isdisjoint(present):
            continue
        if param.type == "composite":
            _composite(rows, param, resource)
            continue
        extractor = _EXTRACTORS.get(param.type)
        if extractor is not None:
            for value in param.walker(resource):
                extractor(rows, param, value)
    return rows


def with_last_updated(rows: IndexRows, last_updated: str) -> IndexRows:
    """``rows`` with ``_lastUpdated`` set to the commit time: the one index value the store
    stamps itself (rows extracted before the write cannot know it)."""
    dates = [row for row in rows.date if row[0] != "_lastUpdated"]
    dates.append(("_lastUpdated", last_updated, last_updated))
    return replace(rows, date=dates)


def reference_targets(resource: dict[str, Any]) -> set[str]:
    """The values of the resource's reference search parameters: what its ``ix_reference``
    rows hold. A patient's compartment is defined by them, in searches and reads alike."""
    rows = IndexRows()
    present = element_names(resource)
    for param in stored_params(resource.get("resourceType", "")):
        if param.type != "reference" or (
            param.heads is not None and param.heads.isdisjoint(present)
        ):
            continue
        for value in param.walker(resource):
            _reference(rows, param, value)
    return {target for _, target in rows.reference}


_CHOICE_KEY = re.compile(f"^([a-z][A-Za-z]*?)(?:{'|'.join(CHOICE_SUFFIXES)})$")


def element_names(resource: dict[str, Any]) -> set[str]:
    """The resource's top-level keys, plus ``value`` for ``valueQuantity`` and the like."""
    names = set(resource)
    for key in resource:
        if match := _CHOICE_KEY.match(key):
            names.add(match[1])
    return names


def _composite(rows: IndexRows, param: SearchParam, resource: dict[str, Any]) -> None:
    """Each element the composite selects gives every (first x second) pair of its components,
    so ``code-value-quantity`` matches a code and a value of the same element only."""
    if len(param.components) != 2 or param.components[0].type != "token":
        return
    first, second = param.components
    second_extract = _EXTRACTORS.get(second.type)
    if second_extract is None:
        return
    for element in param.walker(resource):
        if not isinstance(element, dict):
            continue
        heads, tails = IndexRows(), IndexRows()
        for value in first.walker(element):
            _token(heads, param, value)
        for value in second.walker(element):
            second_extract(tails, param, value)
        for _, system, code in heads.token:
            for tail in _composite_tails(second.type, tails):
                rows.composite.append((param.code, system, code, *tail))


def _composite_tails(kind: str, tails: IndexRows) -> list[tuple[Any, Any, Any, Any]]:
    """The second component as (system, code, lo, hi)."""
    shapes: dict[str, list[tuple[Any, Any, Any, Any]]] = {
        "token": [(system, code, None, None) for _, system, code in tails.token],
        "quantity": [(system, code, number, number) for _, number, system, code in tails.quantity],
        "date": [(None, None, lo, hi) for _, lo, hi in tails.date],
        "string": [(None, norm, None, None) for _, norm, _exact in tails.string],
        "reference": [(None, target, None, None) for _, target in tails.reference],
    }
    return shapes.get(kind, [])


# --- token ---
def _token(rows: IndexRows, param: SearchParam, value: Any) -> None:
    code = param.code
    if isinstance(value, bool | str | int | float):
        rows.token.append((code, None, _text(value)))
    elif isinstance(value, dict):
        for system, token_code, text in _token_parts(value):
            if system is not None or token_code is not None:
                rows.token.append((code, system, token_code))
            if text:
                rows.token_text.append((code, normalise(text)))


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _token_parts(value: dict[str, Any]) -> Iterator[tuple[str | None, str | None, str | None]]:
    if "coding" in value or "text" in value:  # CodeableConcept
        for coding in value.get("coding", ()):
            yield coding.get("system"), coding.get("code"), coding.get("display")
        if value.get("text"):
            yield None, None, value["text"]
    elif "value" in value and ("system" in value or "use" in value or "type" in value):
        # Identifier (system|value, and its type's text) or ContactPoint (value)
        yield value.get("system"), str(value["value"]), (value.get("type") or {}).get("text")
    elif "code" in value or "system" in value:  # Coding
        yield value.get("system"), value.get("code"), value.get("display")
    elif "value" in value:
        yield None, str(value["value"]), None


# --- string ---
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def _string(rows: IndexRows, param: SearchParam, value: Any) -> None:
    for text in _strings_in(value):
        rows.string.append((param.code, normalise(text), text))


def _strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        parts = _NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
        for part in parts:
            item = value.get(part)
            for text in item if isinstance(item, list) else [item]:
                if isinstance(text, str) and text:
                    yield text


# --- date ---
_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@lru_cache(maxsize=16384)  # a message's results share their times
def date_range(text: str) -> tuple[str, str] | None:
    """The UTC interval a FHIR date/dateTime/instant covers at its precision, as ISO text;
    None for text that is no such date (a 13th month, a 30th of February, year 0)."""
    match = _DATE.match(text)
    if match is None:
        return None
    year, month, day = int(match["y"]), match["m"], match["d"]
    if year < 1 or (month is not None and not 1 <= int(month) <= 12):
        return None
    if month is None:
        return f"{year:04d}-01-01T00:00:00.000Z", f"{year:04d}-12-31T23:59:59.999Z"
    last = calendar.monthrange(year, int(month))[1]
    if day is None:
        return (
            f"{year:04d}-{month}-01T00:00:00.000Z",
            f"{year:04d}-{month}-{last:02d}T23:59:59.999Z",
        )
    if not 1 <= int(day) <= last:
        return None
    if match["time"] is None:
        return f"{year:04d}-{month}-{day}T00:00:00.000Z", f"{year:04d}-{month}-{day}T23:59:59.999Z"
    time_part = match["time"]
    precision = timedelta(
        milliseconds=1 if "." in time_part else 1000 if time_part.count(":") == 2 else 60_000
    )
    return _instant_range(text, precision)


def _instant_range(text: str, precision: timedelta) -> tuple[str, str] | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # no zone given: taken as UTC, the server's zone
        start = moment.astimezone(UTC)
        end = start + precision - timedelta(milliseconds=1)
    except (ValueError, OverflowError):  # not a time, or beyond year 9999 once in UTC
        return None
    return _iso_ms(start), _iso_ms(end)


def instant(moment: datetime) -> str:
    """FHIR instant text, always UTC with milliseconds: sorts as text in time order."""
    return _iso_ms(moment.astimezone(UTC))


def _iso_ms(moment: datetime) -> str:
    """``moment`` is UTC; isoformat is several times faster than strftime."""
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _date(rows: IndexRows, param: SearchParam, value: Any) -> None:
    for lo_text, hi_text in _date_bounds(value):
        lo = date_range(lo_text) if lo_text else None
        hi = date_range(hi_text) if hi_text else None
        if lo or hi:
            rows.date.append(
                (
                    param.code,
                    lo[0] if lo else "0001-01-01T00:00:00.000Z",
                    hi[1] if hi else "9999-12-31T23:59:59.999Z",
                )
            )


def _date_bounds(value: Any) -> Iterator[tuple[str | None, str | None]]:
    if isinstance(value, str):
        yield value, value
    elif isinstance(value, dict):
        if "start" in value or "end" in value:  # Period: open ends are unbounded
            yield value.get("start"), value.get("end")
        for event in value.get("event", ()):  # Timing
            yield event, event


# --- reference, uri, quantity, number ---
def _reference(rows: IndexRows, param: SearchParam, value: Any) -> None:
    if isinstance(value, str):  # canonical
        rows.reference.append((param.code, value))
    elif isinstance(value, dict) and isinstance(value.get("reference"), str):
        rows.reference.append((param.code, value["reference"]))


def _uri(rows: IndexRows, param: SearchParam, value: Any) -> None:
    if isinstance(value, str):
        rows.uri.append((param.code, value))


def _quantity(rows: IndexRows, param: SearchParam, value: Any) -> None:
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        rows.quantity.append(
            (
                param.code,
                float(value["value"]),
                value.get("system"),
                value.get("code") or value.get("unit"),
            )
        )


def _number(rows: IndexRows, param: SearchParam, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        rows.number.append((param.code, float(value)))


_EXTRACTORS = {
    "token": _token,
    "string": _string,
    "date": _date,
    "reference": _reference,
    "uri": _uri,
    "quantity": _quantity,
    "number": _number,
}
