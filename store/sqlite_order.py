"""The order of a search's results on SQLite and its keyset paging: one SQL expression per
``_sort`` key (then the id, so the order is total), and the condition that continues after the
previous page's last row."""

from dataclasses import dataclass
from typing import Any

from store.query import SearchQuery, SortKey
from store.sqlite_search import Sql, param_rows

_SORT_COLUMN = {
    "token": "code",
    "string": "norm",
    "reference": "target",
    "quantity": "value",
    "number": "value",
    "uri": "value",
}
# Resources without a value for a sort key come last in either direction.
_LAST_TEXT, _LAST_NUMBER = "\uffff", 1e308


@dataclass(frozen=True)
class SortExpr:
    sql: str
    args: tuple[Any, ...]
    descending: bool


def sort_exprs(query: SearchQuery) -> list[SortExpr]:
    """One SQL expression per ``_sort`` key, then ``c.id`` so the order is total and stable."""
    exprs = [_sort_expr(key) for key in query.sort]
    return [*exprs, SortExpr("c.id", (), False)]


def _sort_expr(key: SortKey) -> SortExpr:
    param, desc = key.param, key.descending
    if param.code == "_id":
        return SortExpr("c.id", (), desc)
    if param.code == "_lastUpdated":
        return SortExpr("v.last_updated", (), desc)
    last: str | float
    if param.type == "date":
        column, kind, last = ("hi" if desc else "lo"), "date", ("" if desc else _LAST_TEXT)
    else:
        column, kind = _SORT_COLUMN[param.type], param.type
        numeric = kind in ("quantity", "number")
        last_number = -_LAST_NUMBER if desc else _LAST_NUMBER
        last = last_number if numeric else ("" if desc else _LAST_TEXT)
    pick = "MAX" if desc else "MIN"
    rows, row_args = param_rows(param)
    sql = (
        f"COALESCE((SELECT {pick}(i.{column}) FROM ix_{kind} i WHERE i.rid = c.rid AND {rows}), ?)"
    )
    return SortExpr(sql, (*row_args, last), desc)


def order_clause(exprs: list[SortExpr]) -> Sql:
    parts, args = [], list[Any]()
    for expr in exprs:
        parts.append(f"{expr.sql} {'DESC' if expr.descending else 'ASC'}")
        args.extend(expr.args)
    return ", ".join(parts), args


def after_clause(exprs: list[SortExpr], last: list[Any]) -> Sql:
    """Rows strictly after ``last`` (the previous page's final sort values) in this order:
    (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ..., with < for descending keys."""
    ors, args = [], []
    for position, expr in enumerate(exprs):
        ands, and_args = [], []
        for before, value in zip(exprs[:position], last, strict=False):
            ands.append(f"{before.sql} = ?")
            and_args.extend([*before.args, value])
        ands.append(f"{expr.sql} {'<' if expr.descending else '>'} ?")
        and_args.extend([*expr.args, last[position]])
        ors.append("(" + " AND ".join(ands) + ")")
        args.extend(and_args)
    return "(" + " OR ".join(ors) + ")", args
