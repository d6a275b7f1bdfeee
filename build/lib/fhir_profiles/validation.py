"""Validation of untrusted resources: the R4 structure (``fhir.resources.R4B`` models), codes
with a required binding (the models accept ``gender: "robot"``), and the Chinese profile
(resident ID-card numbers carry a valid GB 11643 check character).

Returns issues instead of raising, so the API can answer with every problem at once.
"""

from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_profiles.identifiers import RESIDENT_ID_CARD, id_card_problem
from fhir_profiles.issues import Issue
from fhir_profiles.search_params import SUPPORTED_TYPES
from fhir_profiles.terminology import elements, expansion

Resource = dict[str, Any]


def validate(resource: Resource) -> list[Issue]:
    type_ = resource.get("resourceType")
    if not isinstance(type_, str) or type_ not in SUPPORTED_TYPES:
        return [Issue("error", "not-supported", f"resource type {type_!r} is not supported")]
    issues = structure_issues(type_, resource)
    issues.extend(binding_issues(type_, resource))
    issues.extend(identifier_issues(type_, resource))
    return issues


def structure_issues(type_: str, resource: Resource) -> list[Issue]:
    try:
        get_fhir_model_class(type_).model_validate(resource)
    except ValidationError as exc:
        return [_from_pydantic(type_, error) for error in exc.errors()]
    except (TypeError, ValueError) as exc:  # the models raise these for some shapes
        return [Issue("error", "structure", str(exc), (type_,))]
    return []


def _from_pydantic(type_: str, error: Any) -> Issue:
    path = type_
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "__root__":
            path += f".{part}"
    kind = error["type"]
    code = (
        "required" if kind == "missing" else "structure" if kind == "extra_forbidden" else "value"
    )
    message = "unknown element" if kind == "extra_forbidden" else error["msg"]
    return Issue("error", code, f"{path}: {message}", (path,))


def binding_issues(type_: str, resource: Resource) -> Iterator[Issue]:
    for path, value_set in elements().get(type_, {}).get("bindings", ()):
        codes = expansion(value_set)
        if codes is None:
            continue
        for where, code in _codes_at(resource, path.split("."), type_):
            if code not in codes:
                yield Issue(
                    "error",
                    "code-invalid",
                    f"{where}: {code!r} is not in the required value set {value_set}",
                    (where,),
                )


def _codes_at(node: Any, keys: list[str], where: str) -> Iterator[tuple[str, str]]:
    """(FHIRPath-like location, code) for every code found along the JSON path."""
    if not keys:
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):  # Coding or CodeableConcept
            codings = node.get("coding", [node]) if "coding" in node else [node]
            for position, coding in enumerate(codings):
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    yield f"{where}.coding[{position}].code", coding["code"]
        return
    if isinstance(node, list):
        for position, item in enumerate(node):
            yield from _codes_at(item, keys, f"{where}[{position}]")
    elif isinstance(node, dict) and keys[0] in node:
        yield from _codes_at(node[keys[0]], keys[1:], f"{where}.{keys[0]}")


def identifier_issues(type_: str, resource: Resource) -> Iterator[Issue]:
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list):
        return
    for position, identifier in enumerate(identifiers):
        if not isinstance(identifier, dict) or identifier.get("system") != RESIDENT_ID_CARD:
            continue
        value = identifier.get("value")
        problem = id_card_problem(value) if isinstance(value, str) else "the number is missing"
        if problem:
            where = f"{type_}.identifier[{position}].value"
            yield Issue("error", "value", f"{where}: {problem}", (where,))


def preload() -> None:
    """Load the models and expand the value sets now, so the first write does not wait ~1 s."""
    for type_ in SUPPORTED_TYPES:
        get_fhir_model_class(type_)
        for _, value_set in elements().get(type_, {}).get("bindings", ()):
            expansion(value_set)
