"""A platform's field table: for each column of a record, its type, length, whether it is
required and, for a coded column, its value domain. Every record is checked against its table
before it is sent; one that fails is recorded in the ledger as not sent (``Courier.refuse``),
naming the fields, for a person to fix at the source."""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel

FieldType = Literal["text", "integer", "number", "date", "datetime", "code"]


class FieldRule(BaseModel, frozen=True):
    column: str
    type: FieldType = "text"
    name: str = ""  # the platform's name for it (数据元名称), for the person reading a refusal
    length: int | None = None  # the most characters (text, code) or digits (integer)
    required: bool = False
    codes: tuple[str, ...] = ()  # the value domain of a coded column; empty: any
    minimum: float | None = None


def check(record: Mapping[str, Any], rules: Sequence[FieldRule]) -> list[str]:
    """What is wrong with the record, one line per field; empty when it may be sent."""
    problems = []
    for rule in rules:
        value = record.get(rule.column)
        label = f"{rule.column} ({rule.name})" if rule.name else rule.column
        if value is None or value == "":
            if rule.required:
                problems.append(f"{label}: required")
            continue
        problem = _problem(rule, value)
        if problem:
            problems.append(f"{label}: {problem}")
    return problems


def _problem(rule: FieldRule, value: Any) -> str:
    if rule.type in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"not a number: {str(value)[:20]!r}"
        if rule.type == "integer" and not float(value).is_integer():
            return f"not a whole number: {value}"
        if rule.minimum is not None and value < rule.minimum:
            return f"below {rule.minimum:g}: {value}"
        if rule.length is not None and len(str(abs(int(value)))) > rule.length:
            return f"more than {rule.length} digits"
        return ""
    text = value.isoformat() if isinstance(value, date) else str(value)
    if rule.type == "date" and not _parses(date.fromisoformat, text, 10):
        return f"not a date (yyyy-MM-dd): {text[:20]!r}"
    if rule.type == "datetime" and not _parses(datetime.fromisoformat, text, 19):
        return f"not a time (yyyy-MM-dd HH:mm:ss): {text[:25]!r}"
    if rule.codes and text not in rule.codes:
        return f"{text[:20]!r} is not in its value domain ({', '.join(rule.codes[:12])})"
    if rule.length is not None and len(text) > rule.length:
        return f"longer than {rule.length} characters ({len(text)})"
    return ""


def _parses(parse: Any, text: str, size: int) -> bool:
    if len(text) != size:
        return False
    try:
        parse(text)
    except ValueError:
        return False
    return True
