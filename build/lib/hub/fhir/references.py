"""Every ``Reference.reference`` inside a resource, at any depth."""

from collections.abc import Iterator
from typing import Any


def references_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str):
            yield reference
        values: Any = node.values()
    elif isinstance(node, list):
        values = node
    else:
        return
    for value in values:
        if isinstance(value, dict | list):
            yield from references_in(value)
