"""How deep a JSON body nests, checked before anything walks it: validation, reference
resolution and shaping recurse, and a body nested hundreds of levels deep would reach Python's
recursion limit in the middle of a request."""

from typing import Any

# Real resources nest a few levels (a Questionnaire's items perhaps a dozen, a Bundle adds
# three): 64 leaves room for any of them and is far from the recursion limit.
MAX_JSON_DEPTH = 64


def too_deep(value: Any, limit: int) -> bool:
    """Whether any object or array in ``value`` sits more than ``limit`` levels down."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            pending.extend((child, depth + 1) for child in node.values() if _nests(child))
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node if _nests(child))
    return False


def _nests(value: Any) -> bool:
    return isinstance(value, dict | list)
