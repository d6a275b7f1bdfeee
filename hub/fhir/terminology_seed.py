"""The Chinese code tables (``data/cn-codesystems.json``) as CodeSystem resources in the
clinical store, so ``CodeSystem/$lookup`` and searches work on them from the first start.
A table already stored (perhaps edited by the hospital) is left as it is."""

import json
from importlib import resources
from typing import Any

from hub.base.errors import ResourceGoneError, ResourceNotFoundError
from store.resources import ResourceStore


def code_systems() -> list[dict[str, Any]]:
    data = resources.files("fhir_profiles") / "data" / "cn-codesystems.json"
    return [entry["resource"] for entry in json.loads(data.read_text(encoding="utf-8"))["entry"]]


async def ensure_code_systems(store: ResourceStore) -> int:
    """Store each table that is missing; returns how many were added."""
    added = 0
    for code_system in code_systems():
        try:
            await store.read("CodeSystem", code_system["id"])
        except ResourceGoneError:
            continue  # deleted on purpose: do not bring it back
        except ResourceNotFoundError:
            await store.update(code_system)
            added += 1
    return added
