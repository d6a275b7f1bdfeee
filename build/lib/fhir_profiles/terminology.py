"""The specification's ValueSets, expanded to plain code sets where that is possible, and the
element facts derived from the StructureDefinitions (``data/elements.json``)."""

import gzip
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

Codes = frozenset[str]


def _data(name: str) -> Any:
    path = resources.files("fhir_profiles") / "data" / name
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)


@cache
def elements() -> dict[str, dict[str, Any]]:
    """type -> {"summary": [...], "mandatory": [...], "bindings": [[path, valueset], ...]}."""
    result: dict[str, dict[str, Any]] = _data("elements.json")
    return result


@cache
def _definitions() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(CodeSystems by url, ValueSets by url) from the specification's bundle."""
    systems, value_sets = {}, {}
    for entry in _data("valuesets.json.gz")["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "CodeSystem":
            systems[resource["url"]] = resource
        elif resource["resourceType"] == "ValueSet":
            value_sets[resource["url"]] = resource
    return systems, value_sets


def _concepts(concepts: list[dict[str, Any]]) -> Iterator[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _concepts(concept.get("concept", []))


@cache
def expansion(url: str) -> Codes | None:
    """Every code of the ValueSet, or None when it cannot be enumerated here (filters, external
    code systems such as MIME types or UCUM): such bindings are not checked."""
    systems, value_sets = _definitions()
    value_set = value_sets.get(url.split("|")[0])
    if value_set is None:
        return None
    codes: set[str] = set()
    for include in value_set.get("compose", {}).get("include", []):
        if include.get("filter"):
            return None
        for imported in include.get("valueSet", []):
            more = expansion(imported)
            if more is None:
                return None
            codes |= more
        if include.get("concept"):
            codes |= {concept["code"] for concept in include["concept"]}
        elif "system" in include:
            system = systems.get(include["system"])
            if system is None or system.get("content") != "complete":
                return None
            codes |= set(_concepts(system.get("concept", [])))
    return frozenset(codes)
