"""``_summary`` and ``_elements``: a subset of each resource, marked SUBSETTED as the spec asks."""

from typing import Any

import orjson

from fhir_profiles.terminology import elements
from hub.fhir.outcome import FhirError

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS = ("resourceType", "id", "meta")
SUMMARY_MODES = ("true", "false", "text", "data", "count")


def shaping(query: tuple[tuple[str, str], ...]) -> tuple[str | None, tuple[str, ...] | None]:
    """(``_summary`` mode, ``_elements`` names) of a request; both None when neither is asked."""
    summary, names = None, None
    for key, value in query:
        if key == "_summary":
            if value not in SUMMARY_MODES:
                raise FhirError.of(400, "invalid", f"_summary must be one of {SUMMARY_MODES}")
            summary = value
        elif key == "_elements":
            names = tuple(part.strip() for part in value.split(",") if part.strip())
    return summary, names


def shape(body: bytes, summary: str | None, names: tuple[str, ...] | None) -> Any:
    """The stored bytes unchanged when nothing is asked, else the reduced resource."""
    if names is None and summary in (None, "false", "count"):
        return orjson.Fragment(body)
    resource = orjson.loads(body)
    keep = _kept(resource["resourceType"], summary, names)
    if keep is None:  # _summary=data: everything but the narrative
        reduced = {key: value for key, value in resource.items() if key != "text"}
    else:
        reduced = {key: value for key, value in resource.items() if key_matches(key, keep)}
    meta = dict(reduced.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    reduced["meta"] = meta
    return reduced


def _kept(type_: str, summary: str | None, names: tuple[str, ...] | None) -> set[str] | None:
    facts = elements().get(type_, {})
    mandatory = set(facts.get("mandatory", ()))
    if names is not None:
        return {*_ALWAYS, *mandatory, *_json_keys(names)}
    if summary == "text":
        return {*_ALWAYS, "text", *mandatory}
    if summary == "true":
        return {*_ALWAYS, *_json_keys(facts.get("summary", ()))}
    return None


def _json_keys(names: Any) -> set[str]:
    """Element names to JSON keys: ``deceased[x]`` matches deceasedBoolean, deceasedDateTime."""
    keys = set()
    for name in names:
        keys.add(name.removesuffix("[x]"))
    return keys


def key_matches(key: str, kept: set[str]) -> bool:
    """``valueQuantity`` is kept by ``value``: choice elements are named without their type."""
    if key in kept:
        return True
    return any(key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper() for stem in kept)
