"""The DRG field table (``data/frontpage_fields.json``): for every field of the front page
(MAIN_DATA), the settlement list (MED_FEE_INFO) and the fee-detail rows (DETAILS), where its
value comes from, how it is written and which values the platform takes. Changing or adding a
field is an edit of the table; only a new kind of source needs a reader in ``sources.py``.

Formats, as the platform reads them: ``datetime`` is ``yyyy-MM-dd HH:mm:ss`` in Shaoxing time
(a bare date stays ``yyyy-MM-dd``: no time is made up), ``date`` is ``yyyy-MM-dd``, ``amount``
has two decimals, ``quantity`` no trailing zeros, ``integer`` is a JSON number, the rest text.
"""

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from adapters.drg.sources import LINE_READERS, STAY_READERS, Value
from adapters.drg.stay import LOCAL
from hub.base.json import Json
from hub.base.site_files import read_json

TABLE = Path(__file__).parent / "data" / "frontpage_fields.json"
FORMATS = {"text", "code", "integer", "date", "datetime", "amount", "quantity", "icd10", "icd9cm3"}

Written = str | int


@dataclass(frozen=True)
class FieldSpec:
    field: str  # the platform's field code, e.g. "RYTJ" or "JBDM3"
    name: str  # the Chinese meaning shown to a person, e.g. "入院途径"
    source: str  # the FHIR resource type the value comes from
    reader: str  # the reader's name in sources.py
    format: str
    slot: int = 0  # n of a repeated field (JBDM{n}), 0 otherwise
    domain: tuple[str, ...] = ()  # allowed values, empty when any
    required: bool = False
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()  # applies only when these fields match
    minimum: Decimal | None = None

    def applies(self, record: dict[str, Any]) -> bool:
        return all(str(record.get(name, "")) in values for name, values in self.when)


@dataclass(frozen=True)
class FieldTable:
    front_page: tuple[FieldSpec, ...]
    settlement_list: tuple[FieldSpec, ...]
    fee_form: tuple[FieldSpec, ...]
    fee_row: tuple[FieldSpec, ...]


def _specs(entry: dict[str, Any], readers: dict[str, Any]) -> list[FieldSpec]:
    if entry["value"] not in readers:
        raise ValueError(f"{entry['field']}: no reader named {entry['value']!r}")
    if entry["format"] not in FORMATS:
        raise ValueError(f"{entry['field']}: unknown format {entry['format']!r}")
    minimum = entry.get("minimum")
    common: dict[str, Any] = {
        "name": entry["name"],
        "source": entry["from"],
        "reader": entry["value"],
        "format": entry["format"],
        "domain": tuple(entry.get("domain", ())),
        "required": bool(entry.get("required", False)),
        "when": tuple((k, tuple(v)) for k, v in entry.get("when", {}).items()),
        "minimum": None if minimum is None else Decimal(str(minimum)),
    }
    repeat = int(entry.get("repeat", 0))
    if not repeat:
        return [FieldSpec(entry["field"], **common)]
    return [FieldSpec(entry["field"].format(n=n), slot=n, **common) for n in range(1, repeat + 1)]


def load(path: Path = TABLE) -> FieldTable:
    return parse(json.loads(path.read_text("utf-8")))


def parse(raw: Json) -> FieldTable:
    front_page = [spec for e in raw["MAIN_DATA"] for spec in _specs(e, STAY_READERS)]
    by_code = {spec.field: spec for spec in front_page}
    return FieldTable(
        front_page=tuple(front_page),
        settlement_list=tuple(by_code[code] for code in raw["MED_FEE_INFO"]),
        fee_form=tuple(by_code[code] for code in raw["DETAILS_FORM"]),
        fee_row=tuple(spec for e in raw["DETAILS"] for spec in _specs(e, LINE_READERS)),
    )


@cache
def table() -> FieldTable:
    """The shipped table, or the site's copy in ``JIANHU_CONFIG_DIR``."""
    return parse(read_json("adapters", "drg/data/frontpage_fields.json"))


def write(spec: FieldSpec, value: Value) -> Written | None:
    """A reader's value as the platform takes it; None leaves the field out."""
    if value is None or value == "":
        return None
    if spec.format in ("date", "datetime") and isinstance(value, date):
        return _moment(value, spec.format)
    if spec.format == "integer" and isinstance(value, int | Decimal):
        return int(value)
    if spec.format == "amount" and isinstance(value, int | Decimal):
        return str(Decimal(value).quantize(Decimal("0.01")))
    if spec.format == "quantity" and isinstance(value, int | Decimal):
        text = format(Decimal(value).normalize(), "f")
        return text
    return str(value)


def _moment(value: date, fmt: str) -> str:
    if isinstance(value, datetime):
        local = value.astimezone(LOCAL) if value.tzinfo else value
        return local.strftime("%Y-%m-%d" if fmt == "date" else "%Y-%m-%d %H:%M:%S")
    return value.strftime("%Y-%m-%d")
