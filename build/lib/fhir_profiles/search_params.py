"""The R4 search parameters of the supported resource types, from the specification's own
``search-parameters.json``, each with its compiled path walker."""

import json
import re
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from fhir_profiles.fhirpath import Walker, compile_expression, compile_relative

SUPPORTED_TYPES = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Encounter",
    "EpisodeOfCare",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "ServiceRequest",
    "Specimen",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "Medication",
    "Procedure",
    "AllergyIntolerance",
    "Immunization",
    "DocumentReference",
    "Composition",
    "Binary",
    "Appointment",
    "Schedule",
    "Slot",
    "Coverage",
    "Claim",
    "ClaimResponse",
    "ChargeItem",
    "Account",
    "Invoice",
    "Task",
    "Communication",
    "Flag",
    "Group",
    "Questionnaire",
    "QuestionnaireResponse",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
    "Subscription",
    "AuditEvent",
    "Provenance",
    "Device",
    "ImagingStudy",
    "RelatedPerson",
)
# Parameter types indexed by value; composites are indexed from their components' values.
VALUE_TYPES = frozenset({"token", "string", "date", "reference", "quantity", "number", "uri"})


@dataclass(frozen=True)
class Component:
    definition: str  # canonical URL of the component's own SearchParameter
    expression: str  # relative to the composite's element
    type: str  # the component parameter's type: token, quantity, date, string, reference
    walker: Walker


@dataclass(frozen=True)
class SearchParam:
    resource_type: str
    code: str
    type: str  # token | string | date | reference | quantity | number | uri | composite | special
    expression: str
    walker: Walker
    targets: tuple[str, ...] = ()  # reference: the resource types it may point to
    components: tuple[Component, ...] = ()
    url: str = ""
    # top-level elements the expression starts from; None when it starts at the resource itself.
    # Extraction skips a parameter whose elements are all absent (most are, on any resource).
    heads: frozenset[str] | None = None
    # the parameters whose index rows hold this one's values, when it repeats them (combo-code:
    # code and component-code; phonetic: name; Observation.patient: subject): it has no rows of
    # its own and a query reads theirs; () when it is stored itself
    stored_as: tuple[str, ...] = ()
    stored_target: str | None = None  # of those rows, only references to this type

    @property
    def codes(self) -> tuple[str, ...]:
        """The parameter codes its index rows are stored under."""
        return self.stored_as or (self.code,)


def expression_heads(expression: str, resource_type: str) -> frozenset[str] | None:
    """``Observation.code | Observation.component.code`` -> {code, component}; a part naming
    the resource alone (``Observation``, in composites) -> None."""
    heads = set()
    for part in expression.split(" | "):
        path = part.strip().lstrip("(")
        root, _, rest = path.partition(".")
        if root not in (resource_type, "Resource", "DomainResource"):
            continue
        name = re.split(r"[.( ]", rest, maxsplit=1)[0]
        if not name:
            return None
        heads.add(name)
    return frozenset(heads)


def _definitions() -> list[dict[str, Any]]:
    data = resources.files("fhir_profiles") / "data" / "search-parameters.json"
    bundle = json.loads(data.read_text(encoding="utf-8"))
    return [entry["resource"] for entry in bundle["entry"]]


@cache
def registry() -> dict[str, dict[str, SearchParam]]:
    """resource type -> parameter code -> parameter, for every supported type."""
    found: dict[str, dict[str, SearchParam]] = {name: {} for name in SUPPORTED_TYPES}
    definitions = _definitions()
    types_by_url = {definition["url"]: definition["type"] for definition in definitions}
    for definition in definitions:
        expression = definition.get("expression")
        if not expression:
            continue  # no expression: nothing the server can index (e.g. Resource._text)
        for base in definition.get("base", []):
            targets = SUPPORTED_TYPES if base in ("Resource", "DomainResource") else (base,)
            for resource_type in targets:
                if resource_type in found:
                    _add(found[resource_type], definition, resource_type, expression, types_by_url)
    return {name: _with_aliases(params, name) for name, params in found.items()}


_RESOLVED = re.compile(r"^(?P<base>.+)\.where\(resolve\(\) is (?P<target>\w+)\)$")


def own_parts(expression: str, resource_type: str) -> frozenset[str]:
    """The parts of a (multi-type) expression that apply to one resource type."""
    parts = set()
    for part in expression.split(" | "):
        text = part.strip()
        while text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        if text == resource_type or text.startswith(f"{resource_type}."):
            parts.add(text)
    return frozenset(parts)


def _with_aliases(params: dict[str, SearchParam], resource_type: str) -> dict[str, SearchParam]:
    """Every parameter that repeats the values of others, marked to be read from theirs: the
    same expression (one is kept), a union of others' expressions, or another reference's
    expression narrowed to one target type. About a third of an ORU's index rows were such
    repeats."""
    parts = {code: own_parts(p.expression, resource_type) for code, p in params.items()}
    stored: dict[tuple[str, frozenset[str], tuple[str, ...]], str] = {}
    for code in sorted(params):  # the alphabetically first of equals keeps its rows
        key = (params[code].type, parts[code], _components(params[code]))
        if parts[code] and key not in stored and code != "_id":
            stored[key] = code
    found = dict(params)
    for code, param in params.items():
        key = (param.type, parts[code], _components(param))
        if parts[code] and stored.get(key, code) != code:
            found[code] = replace(param, stored_as=(stored[key],))
        elif (union := _union(param, parts[code], stored)) is not None:
            found[code] = replace(param, stored_as=union)
        elif (narrowed := _narrowed(param, parts[code], stored)) is not None:
            found[code] = replace(param, stored_as=(narrowed[0],), stored_target=narrowed[1])
    return found


def _components(param: SearchParam) -> tuple[str, ...]:
    return tuple(component.expression for component in param.components)


def _union(
    param: SearchParam, parts: frozenset[str], stored: dict[Any, str]
) -> tuple[str, ...] | None:
    if len(parts) < 2:
        return None
    codes = [stored.get((param.type, frozenset({part}), _components(param))) for part in parts]
    if any(code is None or code == param.code for code in codes):
        return None
    return tuple(sorted(code for code in codes if code is not None))


def _narrowed(
    param: SearchParam, parts: frozenset[str], stored: dict[Any, str]
) -> tuple[str, str] | None:
    if param.type != "reference" or len(parts) != 1:
        return None
    match = _RESOLVED.match(next(iter(parts)))
    if match is None:
        return None
    base = stored.get(("reference", frozenset({match["base"]}), ()))
    return (base, match["target"]) if base is not None and base != param.code else None


def _add(
    params: dict[str, SearchParam],
    definition: dict[str, Any],
    resource_type: str,
    expression: str,
    types_by_url: dict[str, str],
) -> None:
    walker = compile_expression(expression, resource_type)
    if walker is None:
        return
    params[definition["code"]] = SearchParam(
        resource_type=resource_type,
        code=definition["code"],
        type=definition["type"],
        expression=expression,
        walker=walker,
        targets=tuple(definition.get("target", ())),
        components=tuple(
            Component(
                part["definition"],
                part["expression"],
                types_by_url.get(part["definition"], "special"),
                compile_relative(part["expression"]),
            )
            for part in definition.get("component", ())
        ),
        url=definition.get("url", ""),
        heads=expression_heads(expression, resource_type),
    )


def params_for(resource_type: str) -> dict[str, SearchParam]:
    return registry().get(resource_type, {})
