"""Compiles a parsed ``SearchQuery`` into a MongoDB filter over the ``ix`` sub-document that
``index_document`` writes next to each current resource: one array per parameter kind, each
item tagged with its parameter (``p``). A clause is an ``$elemMatch`` (its values OR-ed inside
``$or``), clauses are AND-ed; the same parsed query the SQLite backend compiles."""

import re
from collections.abc import Callable
from typing import Any

from store.index import IndexRows
from store.query import Clause, SearchQuery, SortKey, Value

Filter = dict[str, Any]
_LAST = "\U0010ffff"
_DATE_TESTS: dict[str, Callable[[Any, Any], Filter]] = {
    "eq": lambda lo, hi: {"lo": {"$gte": lo}, "hi": {"$lte": hi}},
    "gt": lambda lo, hi: {"hi": {"$gt": hi}},
    "lt": lambda lo, hi: {"lo": {"$lt": lo}},
    "ge": lambda lo, hi: {"hi": {"$gte": lo}},
    "le": lambda lo, hi: {"lo": {"$lte": hi}},
    "sa": lambda lo, hi: {"lo": {"$gt": hi}},
    "eb": lambda lo, hi: {"hi": {"$lt": lo}},
    "ap": lambda lo, hi: {"lo": {"$lte": hi}, "hi": {"$gte": lo}},
    "ne": lambda lo, hi: {"$nor": [{"lo": {"$gte": lo}, "hi": {"$lte": hi}}]},
}


def index_document(rows: IndexRows) -> dict[str, list[dict[str, Any]]]:
    """The ``ix`` sub-document of a resource: short keys, only the kinds it has."""
    shapes: dict[str, list[dict[str, Any]]] = {
        "token": [{"p": p, "s": s, "c": c} for p, s, c in rows.token],
        "token_text": [{"p": p, "t": t} for p, t in rows.token_text],
        "string": [{"p": p, "n": n, "e": e} for p, n, e in rows.string],
        "date": [{"p": p, "lo": lo, "hi": hi} for p, lo, hi in rows.date],
        "reference": [{"p": p, "t": t} for p, t in rows.reference],
        "quantity": [{"p": p, "v": v, "s": s, "c": c} for p, v, s, c in rows.quantity],
        "number": [{"p": p, "v": v} for p, v in rows.number],
        "uri": [{"p": p, "v": v} for p, v in rows.uri],
        "composite": [
            {"p": p, "s1": s1, "c1": c1, "s2": s2, "c2": c2, "lo": lo, "hi": hi}
            for p, s1, c1, s2, c2, lo, hi in rows.composite
        ],
    }
    return {kind: items for kind, items in shapes.items() if items}


def sort_document(rows: IndexRows) -> dict[str, dict[str, Any]]:
    """Per parameter, the smallest and largest value to sort by (ascending, descending)."""
    values: dict[str, list[Any]] = {}
    picks: list[tuple[str, Any]] = [
        *((p, c) for p, _, c in rows.token if c is not None),
        *((p, n) for p, n, _ in rows.string),
        *((p, lo) for p, lo, _ in rows.date),
        *((p, t) for p, t in rows.reference),
        *((p, v) for p, v, _, _ in rows.quantity),
        *((p, v) for p, v in rows.number),
        *((p, v) for p, v in rows.uri),
    ]
    for param, value in picks:
        values.setdefault(param, []).append(value)
    highs = {p: hi for p, _, hi in rows.date}
    return {p: {"lo": min(found), "hi": highs.get(p, max(found))} for p, found in values.items()}


def compile_filter(query: SearchQuery) -> Filter:
    parts: list[Filter] = [{"type": query.resource_type, "deleted": False}]
    if query.compartment is not None:
        parts.append(compartment_filter(query.resource_type, query.compartment))
    parts.extend(compile_clause(clause) for clause in query.clauses)
    return {"$and": parts}


def compartment_filter(resource_type: str, patient: str) -> Filter:
    """The patient itself, or a resource with a reference search parameter naming it."""
    if resource_type == "Patient":
        return {"id": patient.partition("/")[2]}
    return {"ix.reference.t": patient}


def compile_clause(clause: Clause, chained_ids: list[str] | None = None) -> Filter:
    if clause.param.code == "_id":
        return _id_filter(clause)
    kind = "token_text" if clause.modifier == "text" else clause.param.type
    field = f"ix.{kind}"
    if clause.modifier == "missing":
        present = {field: {"$elemMatch": _rows(clause, {})}}
        return {"$nor": [present]} if clause.missing else present
    if clause.chain is not None:  # the caller resolved the chain to target references
        return {field: {"$elemMatch": _rows(clause, {"t": {"$in": chained_ids or []}})}}
    tests = [_value_test(clause.param.type, clause.modifier, value) for value in clause.values]
    match: Filter = _rows(clause, tests[0] if len(tests) == 1 else {"$or": tests})
    found = {field: {"$elemMatch": match}}
    return {"$nor": [found]} if clause.modifier == "not" else found


def _rows(clause: Clause, test: Filter) -> Filter:
    """The parameter's own rows, or those of the parameters it repeats (``stored_as``)."""
    codes = clause.param.codes
    match: Filter = {"p": codes[0] if len(codes) == 1 else {"$in": list(codes)}, **test}
    if clause.param.stored_target is not None:
        narrowed = {"t": {"$regex": f"^{re.escape(clause.param.stored_target)}/"}}
        return {"$and": [match, narrowed]}
    return match


def _id_filter(clause: Clause) -> Filter:
    if clause.modifier == "missing":
        return {"id": {"$exists": not clause.missing}}
    ids = [value.code or value.text for value in clause.values]
    return {"id": {"$nin" if clause.modifier == "not" else "$in": ids}}


def _value_test(kind: str, modifier: str | None, value: Value) -> Filter:
    if kind == "token":
        return _token(modifier, value, "s", "c")
    if kind == "string":
        if modifier == "exact":
            return {"e": value.text}
        if modifier == "contains":
            return {"n": {"$regex": re.escape(value.text)}}
        return {"n": {"$gte": value.text, "$lt": value.text + _LAST}}
    if kind == "date":
        return _DATE_TESTS[value.prefix](value.low, value.high)
    if kind in ("number", "quantity"):
        return _number(value)
    if kind == "reference":
        if value.text.startswith("*/"):
            return {"t": {"$regex": "/" + re.escape(value.text[2:]) + "$"}}
        return {"t": value.text}
    if kind == "composite":
        return _composite(value)
    return {"v": value.text}  # uri


def _token(modifier: str | None, value: Value, system: str, code: str) -> Filter:
    if modifier == "text":
        return {"t": {"$gte": value.text, "$lt": value.text + _LAST}}
    test: Filter = {}
    if value.code is not None:
        test[code] = value.code
    if value.no_system:
        test[system] = None
    elif value.system is not None:
        test[system] = value.system
    return test


def _number(value: Value) -> Filter:
    exact = float(value.text)
    tests = {
        "eq": {"$gte": value.low, "$lt": value.high},
        "gt": {"$gt": exact},
        "lt": {"$lt": exact},
        "ge": {"$gte": exact},
        "le": {"$lte": exact},
        "sa": {"$gt": exact},
        "eb": {"$lt": exact},
        "ap": {"$gte": value.low, "$lte": value.high},
    }
    test: Filter = (
        {"$nor": [{"v": tests["eq"]}]} if value.prefix == "ne" else {"v": tests[value.prefix]}
    )
    if value.system:
        test["s"] = value.system
    if value.code:
        test["c"] = value.code
    return test


def _composite(value: Value) -> Filter:
    head, tail = value.parts
    test = _token(None, head, "s1", "c1")
    if isinstance(tail.low, str) and tail.low:  # a date
        ranged: Filter = _DATE_TESTS[tail.prefix](tail.low, tail.high)
        test = {**test, **ranged}
    elif tail.low != "":  # a quantity
        number = _number(tail)
        test["lo"] = number["v"]
        if "s" in number:
            test["s2"] = number["s"]
        if "c" in number:
            test["c2"] = number["c"]
    elif tail.code is not None or tail.text:
        test["c2"] = tail.code if tail.code is not None else tail.text
    return test


# --- sorting and keyset paging ---
def sort_fields(keys: tuple[SortKey, ...]) -> list[tuple[str, int]]:
    fields = []
    for key in keys:
        if key.param.code == "_id":
            fields.append(("id", -1 if key.descending else 1))
        elif key.param.code == "_lastUpdated":
            fields.append(("last_updated", -1 if key.descending else 1))
        else:
            side = "hi" if key.descending else "lo"
            code = key.param.codes[0]  # a repeating parameter sorts by the first it repeats
            fields.append((f"srt.{code}.{side}", -1 if key.descending else 1))
    return [*fields, ("id", 1)]


def after(fields: list[tuple[str, int]], last: list[Any]) -> Filter:
    """Documents strictly after ``last`` in this order (the keyset cursor)."""
    branches = []
    for position, (field, direction) in enumerate(fields):
        branch: Filter = {f: v for (f, _), v in zip(fields[:position], last, strict=False)}
        branch[field] = {"$gt" if direction == 1 else "$lt": last[position]}
        branches.append(branch)
    return {"$or": branches}
