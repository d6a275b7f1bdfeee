"""A compiler for the FHIRPath that R4 search parameters use, into plain Python path walkers.

The specification's SearchParameter expressions use a small part of FHIRPath: paths, unions
(``|``), choice types (``value as Quantity``, ``onset.as(Period)``), ``where(resolve() is Type)``
on references, ``where(system='phone')`` filters and one ``exists() and ... != false``.
Compiled once, each walker costs microseconds per resource; a general FHIRPath engine costs
about a hundred times more and cannot ``resolve()`` without a server. ``fhirpathpy`` is the
independent oracle in the tests. An expression outside this subset raises ``UnsupportedPathError``,
so a parameter is never silently indexed wrong.
"""

import re
from collections.abc import Callable, Iterable
from typing import Any

from hub.base.errors import JianhuError

Walker = Callable[[dict[str, Any]], list[Any]]
Step = Callable[[list[Any]], list[Any]]

# FHIR data types a choice element ``name[x]`` can take, as they appear in JSON keys.
CHOICE_SUFFIXES = (
    "Boolean",
    "Integer",
    "Decimal",
    "Base64Binary",
    "Instant",
    "String",
    "Uri",
    "Url",
    "Canonical",
    "Date",
    "DateTime",
    "Time",
    "Code",
    "Oid",
    "Id",
    "Uuid",
    "UnsignedInt",
    "PositiveInt",
    "Markdown",
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
    "ContactDetail",
    "Dosage",
    "Expression",
    "UsageContext",
    "Meta",
)
_SUFFIXES = frozenset(CHOICE_SUFFIXES)
ABSTRACT_ROOTS = frozenset({"Resource", "DomainResource"})

_AS_INFIX = re.compile(r"^\((?P<path>[^()]+) as (?P<type>\w+)\)(?P<rest>(\.\w+)*)$")
_EXISTS_NOT_FALSE = re.compile(r"^(?P<path>[\w.]+)\.exists\(\) and (?P=path) != false$")
_STEP = re.compile(
    r"\.(?:(?P<as>as|ofType)\((?P<as_type>\w+)\)"
    r"|where\(resolve\(\) is (?P<ref_type>\w+)\)"
    r"|where\((?P<field>\w+)='(?P<literal>[^']*)'\)"
    r"|(?P<name>\w+))"
)


class UnsupportedPathError(JianhuError, ValueError):
    """The expression uses FHIRPath beyond what search parameters need."""


def compile_expression(expression: str, resource_type: str) -> Walker | None:
    """A walker for the parts of ``expression`` that apply to ``resource_type``, or None."""
    walkers = [
        _compile_part(part.strip())
        for part in expression.split(" | ")
        if _root_of(part.strip()) in (resource_type, *ABSTRACT_ROOTS)
    ]
    if not walkers:
        return None
    if len(walkers) == 1:
        return walkers[0]
    return lambda resource: [value for walker in walkers for value in walker(resource)]


def _root_of(part: str) -> str:
    return part.lstrip("(").split(".", 1)[0]


def _compile_part(part: str) -> Walker:
    if match := _EXISTS_NOT_FALSE.match(part):
        inner = _compile_path(match["path"])
        return lambda resource: [value for value in inner(resource) if value is not False]
    if match := _AS_INFIX.match(part):
        return _compile_path(f"{match['path']}.as({match['type']}){match['rest']}")
    return _compile_path(part)


def _compile_path(path: str) -> Walker:
    root, _, rest = path.partition(".")
    steps: list[Step] = []
    position = 0
    pending_name: str | None = None
    for match in _STEP.finditer("." + rest if rest else ""):
        if match.start() != position:
            raise UnsupportedPathError(f"cannot compile {path!r}")
        position = match.end()
        if match["as"]:  # a choice type: ``value.as(Quantity)`` is the JSON key valueQuantity
            if pending_name is None:
                raise UnsupportedPathError(f"'as' without an element in {path!r}")
            steps[-1] = _child(pending_name + _capitalized(match["as_type"]), choice=False)
            pending_name = None
            continue
        pending_name = match["name"]
        steps.append(_step_for(match))
    if position != len(rest) + (1 if rest else 0):
        raise UnsupportedPathError(f"cannot compile {path!r}")

    def walk(resource: dict[str, Any]) -> list[Any]:
        if root not in ABSTRACT_ROOTS and resource.get("resourceType") != root:
            return []
        nodes: list[Any] = [resource]
        for step in steps:
            nodes = step(nodes)
            if not nodes:
                break
        return nodes

    return walk


def _step_for(match: re.Match[str]) -> Step:
    if match["ref_type"]:
        return _reference_to(match["ref_type"])
    if match["field"]:
        return _where_equals(match["field"], match["literal"])
    return _child(match["name"], choice=True)


def _capitalized(type_name: str) -> str:
    return type_name[0].upper() + type_name[1:]


def _flatten(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(value)
        elif value is not None:
            out.append(value)
    return out


def _child(name: str, choice: bool) -> Step:
    suffixes = _SUFFIXES if choice else frozenset()
    size = len(name)

    def step(nodes: list[Any]) -> list[Any]:
        found = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            if name in node:
                found.append(node[name])
            elif suffixes:  # ``Observation.effective`` means whichever effective[x] is present
                # a node has a handful of keys; probing every choice suffix would cost ~50 lookups
                found.extend(
                    value
                    for key, value in node.items()
                    if key.startswith(name) and key[size:] in suffixes
                )
        return _flatten(found)

    return step


def _reference_to(resource_type: str) -> Step:
    """``where(resolve() is Patient)``: a reference whose target type is Patient."""
    prefix = resource_type + "/"
    marker = "/" + prefix

    def step(nodes: list[Any]) -> list[Any]:
        kept = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            reference = str(node.get("reference", ""))
            if (
                reference.startswith(prefix)
                or marker in reference
                or node.get("type") == resource_type
            ):
                kept.append(node)
        return kept

    return step


def _where_equals(field: str, literal: str) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return [node for node in nodes if isinstance(node, dict) and node.get(field) == literal]

    return step


def compile_relative(expression: str) -> Walker:
    """A walker for an expression relative to an element, as composite components use
    (``code``, ``value.as(Quantity) | value.as(Range)``)."""
    walkers = [_compile_part(f"Resource.{part.strip()}") for part in expression.split(" | ")]
    if len(walkers) == 1:
        return walkers[0]
    return lambda element: [value for walker in walkers for value in walker(element)]
