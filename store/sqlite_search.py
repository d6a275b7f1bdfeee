"""Compiles a parsed ``SearchQuery`` into SQLite: one ``id IN (...)`` per clause, against the
index tables of ``store.sqlite_index``; clauses AND-ed, a clause's values OR-ed."""

from typing import Any

from store.query import Clause, SearchQuery, Value

Sql = tuple[str, list[Any]]

# FHIR date prefixes over the resource's range [lo, hi] and the searched range [low, high].
_DATE_TESTS = {
    "eq": "(i.lo >= ? AND i.hi <= ?)",
    "ne": "NOT (i.lo >= ? AND i.hi <= ?)",
    "gt": "(i.hi > ?)",
    "lt": "(i.lo < ?)",
    "ge": "(i.hi >= ?)",
    "le": "(i.lo <= ?)",
    "sa": "(i.lo > ?)",
    "eb": "(i.hi < ?)",
    "ap": "(i.lo <= ? AND i.hi >= ?)",
}
_NUMBER_TESTS = {
    "eq": "(i.value >= ? AND i.value < ?)",
    "ne": "NOT (i.value >= ? AND i.value < ?)",
    "gt": "(i.value > ?)",
    "lt": "(i.value < ?)",
    "ge": "(i.value >= ?)",
    "le": "(i.value <= ?)",
    "sa": "(i.value > ?)",
    "eb": "(i.value < ?)",
    "ap": "(i.value >= ? AND i.value <= ?)",
}


def compile_query(query: SearchQuery) -> Sql:
    """The WHERE clause over ``resource_current c`` selecting the matching current resources."""
    parts, params = ["c.type = ?"], [query.resource_type]
    for clause in query.clauses:
        sql, args = compile_clause(query.resource_type, clause)
        parts.append(sql)
        params.extend(args)
    return " AND ".join(parts), params


def compile_clause(resource_type: str, clause: Clause) -> Sql:
    kind = clause.param.type
    table = "token_text" if clause.modifier == "text" else kind
    head = f"SELECT i.id FROM ix_{table} i WHERE i.type = ? AND i.param = ?"
    args: list[Any] = [resource_type, clause.param.code]
    if clause.modifier == "missing":
        return (f"c.id NOT IN ({head})" if clause.missing else f"c.id IN ({head})"), args
    if clause.chain is not None:
        inner_type = clause.chain_type or ""
        inner_sql, inner_args = compile_clause(inner_type, clause.chain)
        inner = inner_sql.replace("c.id IN", "id IN", 1)
        targets = f"SELECT ? || '/' || id FROM resource_current WHERE type = ? AND {inner}"
        return (
            f"c.id IN ({head} AND i.target IN ({targets}))",
            [*args, inner_type, inner_type, *inner_args],
        )
    tests, test_args = [], []
    for value in clause.values:
        sql, values = _value_test(kind, clause.modifier, value)
        tests.append(sql)
        test_args.extend(values)
    body = f"{head} AND ({' OR '.join(tests)})"
    if clause.modifier == "not":  # resources with no matching token, including none at all
        return f"c.id NOT IN ({body})", [*args, *test_args]
    return f"c.id IN ({body})", [*args, *test_args]


def _value_test(kind: str, modifier: str | None, value: Value) -> Sql:
    return _TESTS[kind](modifier, value)


def _string_test(modifier: str | None, value: Value) -> Sql:
    if modifier == "exact":
        return "i.exact = ?", [value.text]
    pattern = _like_escape(value.text)
    return "i.norm LIKE ? ESCAPE '\\'", [
        f"%{pattern}%" if modifier == "contains" else f"{pattern}%"
    ]


def _date_test(modifier: str | None, value: Value) -> Sql:
    return _ranged(_DATE_TESTS, value, value.low, value.high)


def _number_test(modifier: str | None, value: Value) -> Sql:
    # eq/ne/ap use the range the written precision implies; the others the exact number.
    exact = float(value.text)
    return _ranged(_NUMBER_TESTS, value, exact, exact)


def _quantity_test(modifier: str | None, value: Value) -> Sql:
    sql, args = _number_test(modifier, value)
    if value.system:
        sql, args = f"{sql} AND i.system = ?", [*args, value.system]
    if value.code:
        sql, args = f"{sql} AND i.code = ?", [*args, value.code]
    return f"({sql})", args


def _reference_test(modifier: str | None, value: Value) -> Sql:
    if value.text.startswith("*/"):
        return "i.target LIKE ? ESCAPE '\\'", ["%/" + _like_escape(value.text[2:])]
    return "i.target = ?", [value.text]


def _uri_test(modifier: str | None, value: Value) -> Sql:
    return "i.value = ?", [value.text]


def _token_test(modifier: str | None, value: Value) -> Sql:
    if modifier == "text":
        return "i.text LIKE ? ESCAPE '\\'", [_like_escape(value.text) + "%"]
    tests, args = [], []
    if value.code is not None:
        tests.append("i.code = ?")
        args.append(value.code)
    if value.no_system:
        tests.append("i.system IS NULL")
    elif value.system is not None:
        tests.append("i.system = ?")
        args.append(value.system)
    return "(" + " AND ".join(tests or ["1"]) + ")", args


def _ranged(tests: dict[str, str], value: Value, low: Any, high: Any) -> Sql:
    """``low``/``high``: what the one-sided prefixes compare with (gt, le, sa use the top)."""
    sql = tests[value.prefix]
    if value.prefix in ("eq", "ne", "ap"):
        return sql, [value.low, value.high]
    if value.prefix in ("gt", "le", "sa"):
        return sql, [high]
    return sql, [low]  # lt, ge, eb


_TESTS = {
    "token": _token_test,
    "string": _string_test,
    "date": _date_test,
    "number": _number_test,
    "quantity": _quantity_test,
    "reference": _reference_test,
    "uri": _uri_test,
}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
