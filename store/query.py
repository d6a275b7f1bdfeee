"""FHIR search requests parsed once, for every backend: parameter, modifier, prefix, values.

Repeated parameters are AND-ed; comma-separated values within one are OR-ed. Each backend
compiles a ``SearchQuery`` into its own language (``store.sqlite_search`` for SQLite).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from fhir_profiles.search_params import SearchParam, params_for
from hub.base.errors import SearchError
from store.index import date_range, normalise

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# Bounds on one search, far above what a real client asks and far below what makes a query
# plan (or SQLite's expression tree) blow up: OR-ed values per parameter, AND-ed parameters.
MAX_VALUES, MAX_CLAUSES = 100, 40
MODIFIERS = {
    "token": {"not", "text", "missing"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "reference": {"missing"},  # plus ":<ResourceType>"
    "quantity": {"missing"},
    "number": {"missing"},
    "uri": {"missing"},
    "composite": {"missing"},
}
# Result-shaping parameters, handled by the API rather than by the index.
CONTROL = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
        "_format",
        "_pretty",
        "_cursor",
        "_contained",
        "_containedType",
    }
)


@dataclass(frozen=True)
class Value:
    """One OR-ed value, already normalised for its parameter kind."""

    prefix: str = "eq"
    system: str | None = None  # token system, quantity system
    code: str | None = None  # token code, quantity code/unit
    text: str = ""  # string, token :text, reference target, uri
    low: str | float = ""  # date range start / number lower bound
    high: str | float = ""  # date range end / number upper bound
    no_system: bool = False  # token "|code": the code must have no system
    parts: tuple["Value", ...] = ()  # composite: one value per component


@dataclass(frozen=True)
class Clause:
    param: SearchParam
    modifier: str | None
    values: tuple[Value, ...]
    missing: bool | None = None  # for :missing
    chain: "Clause | None" = None  # reference chaining: subject:Patient.identifier=...
    chain_type: str | None = None
    chain_compartment: str | None = None  # the chained resources must be in this compartment


@dataclass(frozen=True)
class SortKey:
    param: SearchParam
    descending: bool = False


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str
    clauses: tuple[Clause, ...]
    unknown: tuple[str, ...] = ()  # parameters ignored (reported back unless handling is strict)
    sort: tuple[SortKey, ...] = ()
    # "Patient/<id>": only that patient and what refers to it through a reference search
    # parameter (a patient/ scope's reach); None: no such limit
    compartment: str | None = None


def parse_search(resource_type: str, pairs: Iterable[tuple[str, str]]) -> SearchQuery:
    clauses, unknown, sort = [], [], []
    pairs = list(pairs)
    if len(pairs) > MAX_CLAUSES + len(CONTROL):
        raise SearchError(f"a search takes at most {MAX_CLAUSES} parameters")
    for name, raw in pairs:
        if name == "_sort":
            sort.extend(parse_sort(resource_type, raw))
        elif name.partition(":")[0] in CONTROL:  # _include:iterate too
            continue
        elif (clause := parse_clause(resource_type, name, raw)) is None:
            unknown.append(name)
        else:
            clauses.append(clause)
    if len(clauses) > MAX_CLAUSES:
        raise SearchError(f"a search takes at most {MAX_CLAUSES} parameters")
    return SearchQuery(resource_type, tuple(clauses), tuple(unknown), tuple(sort))


SORTABLE = frozenset({"token", "string", "date", "reference", "quantity", "number", "uri"})


def parse_sort(resource_type: str, raw: str) -> list[SortKey]:
    """``_sort=-date,code``: keys in order, ``-`` for descending."""
    keys = []
    for part in filter(None, raw.split(",")):
        code = part.removeprefix("-")
        param = params_for(resource_type).get(code)
        if param is None or param.type not in SORTABLE:
            raise SearchError(f"_sort: {code} is not a sortable parameter of {resource_type}")
        keys.append(SortKey(param, descending=part.startswith("-")))
    return keys


def parse_clause(resource_type: str, name: str, raw: str) -> Clause | None:
    code, _, modifier = name.partition(":")
    if "." in modifier or ("." in code and not modifier):
        return _parse_chain(resource_type, name, raw)
    param = params_for(resource_type).get(code)
    if param is None or param.type not in MODIFIERS:
        return None
    modifier_or_none = modifier or None
    if modifier_or_none == "missing":
        if raw not in ("true", "false"):
            raise SearchError(f"{name}: :missing takes true or false")
        return Clause(param, "missing", (), missing=raw == "true")
    _check_modifier(param, modifier_or_none, name)
    if param.type == "composite":
        values = tuple(_composite_value(param, part) for part in _split(raw))
    else:
        values = tuple(
            _parse_value(param, modifier_or_none, _unescape(part)) for part in _split(raw)
        )
    return Clause(param, modifier_or_none, values)


def _composite_value(param: SearchParam, raw: str) -> Value:
    """``code$value``: each part parsed as its component's own parameter type."""
    texts = _split(raw, "$")
    if len(texts) != len(param.components) or len(texts) != 2:
        raise SearchError(f"{param.code}: give {len(param.components)} values joined by $")
    parts = []
    for component, text in zip(param.components, texts, strict=True):
        as_param = replace(param, type=component.type, code=param.code)
        parts.append(_parse_value(as_param, None, _unescape(text)))
    return Value(parts=tuple(parts))


def _check_modifier(param: SearchParam, modifier: str | None, name: str) -> None:
    if modifier is None or modifier in MODIFIERS[param.type]:
        return
    if param.type == "reference" and modifier in (param.targets or (modifier,)):
        return
    raise SearchError(f"{name}: modifier :{modifier} is not supported on {param.type} parameters")


def _parse_chain(resource_type: str, name: str, raw: str) -> Clause:
    head, _, rest = name.partition(".")
    code, _, target = head.partition(":")
    param = params_for(resource_type).get(code)
    if param is None or param.type != "reference":
        raise SearchError(f"{name}: only reference parameters can be chained")
    targets = (target,) if target else param.targets
    if len(targets) != 1:
        raise SearchError(f"{name}: say which type the chain goes through ({code}:Type.{rest})")
    inner = parse_clause(targets[0], rest, raw)
    if inner is None or inner.chain is not None:
        raise SearchError(f"{name}: {rest} is not a search parameter of {targets[0]} (one level)")
    return Clause(param, None, (), chain=inner, chain_type=targets[0])


def _split(raw: str, separator: str = ",") -> list[str]:
    """Comma-separated OR values (or ``$``-joined composite parts); ``\\,`` is a literal comma.
    Other escapes stay for the next split; ``_unescape`` removes them from the final text."""
    if raw.count(separator) >= MAX_VALUES:
        raise SearchError(f"a search parameter takes at most {MAX_VALUES} values")
    parts, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char if char == separator else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _prefixed(raw: str) -> tuple[str, str]:
    if raw[:2] in PREFIXES and len(raw) > 2 and not raw[2].isalpha():
        return raw[:2], raw[2:]
    return "eq", raw


def _parse_value(param: SearchParam, modifier: str | None, raw: str) -> Value:
    kind = param.type
    if kind == "token":
        return _token_value(modifier, raw)
    if kind == "string":
        return Value(text=raw if modifier == "exact" else normalise(raw))
    if kind == "date":
        return _date_value(param, raw)
    if kind in ("number", "quantity"):
        return _numeric_value(param, raw)
    if kind == "reference":
        return Value(text=_reference_target(param, modifier, raw))
    return Value(text=raw)  # uri


def _token_value(modifier: str | None, raw: str) -> Value:
    if modifier == "text":
        return Value(text=normalise(raw))
    if "|" not in raw:
        return Value(code=raw)
    system, _, code = raw.partition("|")
    return Value(system=system or None, code=code or None, no_system=system == "")


def _date_value(param: SearchParam, raw: str) -> Value:
    prefix, text = _prefixed(raw)
    bounds = date_range(text)
    if bounds is None:
        raise SearchError(f"{param.code}: {text!r} is not a FHIR date")
    return Value(prefix=prefix, low=bounds[0], high=bounds[1])


def _numeric_value(param: SearchParam, raw: str) -> Value:
    prefix, text = _prefixed(raw)
    number, system, code = text, None, None
    if param.type == "quantity" and "|" in text:
        number, system_text, code_text = ([*text.split("|"), "", ""])[:3]
        system, code = system_text or None, code_text or None
    try:
        exact = Decimal(number)
    except InvalidOperation as exc:
        raise SearchError(f"{param.code}: {number!r} is not a number") from exc
    if not exact.is_finite() or not -300 < exact.adjusted() < 300:
        raise SearchError(f"{param.code}: {number!r} is not a number this server compares")
    exponent = exact.as_tuple().exponent
    half_step = Decimal(5) * Decimal(10) ** (int(exponent) - 1) if isinstance(exponent, int) else 0
    return Value(
        prefix=prefix,
        system=system,
        code=code,
        low=float(exact - half_step),
        high=float(exact + half_step),
        text=number,
    )


def _reference_target(param: SearchParam, modifier: str | None, raw: str) -> str:
    if "/" in raw or ":" in raw:
        return raw  # Type/id, an absolute URL, or a canonical URN
    if modifier:
        return f"{modifier}/{raw}"
    if len(param.targets) == 1:
        return f"{param.targets[0]}/{raw}"
    return f"*/{raw}"  # any type: the backend matches on the id part
