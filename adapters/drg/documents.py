"""The three DRG documents of one inpatient stay, built from its FHIR resources through the field
table, and checked before anything is sent:

* 住院病案首页 ``{"MAIN_DATA": {...}}`` (baInfo/v1),
* 住院费用结算清单 ``{"MED_FEE_INFO": {...}}`` (medicalFeeInfo/v1),
* 住院诊疗费用明细 ``{"YBLSH", "JZLSH", "ZYCS", "BAH", "DETAILS": [...]}`` (details/v1).

``prepare`` is what the upload trigger calls: with problems nothing is sent and the problems are
what a person sees; without, the three payloads go to the adapter as they are."""

from dataclasses import dataclass, field

from adapters.drg import stay as fhir
from adapters.drg.checks import (
    FieldProblem,
    check_capacity,
    check_fee_details,
    check_front_page,
    check_settlement_list,
)
from adapters.drg.fields import FieldSpec, table, write
from adapters.drg.sources import LINE_READERS, STAY_READERS
from adapters.drg.stay import FeeLine, Stay
from hub.base.json import Json


def _record(specs: tuple[FieldSpec, ...], stay: Stay) -> Json:
    """Fields in table order; a field whose ``when`` does not hold (WSY_YLJG unless LYFS is 3)
    and a field without a value are left out."""
    record: Json = {}
    for spec in specs:
        if not spec.applies(record):
            continue
        value = write(spec, STAY_READERS[spec.reader](stay, spec.slot))
        if value is not None:
            record[spec.field] = value
    return record


def _row(stay: Stay, line: FeeLine) -> Json:
    row: Json = {}
    for spec in table().fee_row:
        value = write(spec, LINE_READERS[spec.reader](stay, line))
        if value is not None:
            row[spec.field] = value
    return row


def front_page(stay: Stay) -> Json:
    return {"MAIN_DATA": _record(table().front_page, stay)}


def settlement_list(stay: Stay) -> Json:
    return {"MED_FEE_INFO": _record(table().settlement_list, stay)}


def fee_details(stay: Stay) -> Json:
    rows = [_row(stay, line) for line in fhir.fee_lines(stay)]
    return {**_record(table().fee_form, stay), "DETAILS": rows}


@dataclass(frozen=True)
class Prepared:
    front_page: Json
    settlement_list: Json
    fee_details: Json
    problems: list[FieldProblem] = field(default_factory=list)

    @property
    def sendable(self) -> bool:
        return not self.problems


def prepare(stay: Stay) -> Prepared:
    """Build the three documents and check them; each problem is reported once (the stay's
    key fields appear in all three documents)."""
    page, settlement, details = front_page(stay), settlement_list(stay), fee_details(stay)
    problems = [
        *check_front_page(page["MAIN_DATA"]),
        *check_capacity(stay),
        *check_settlement_list(settlement["MED_FEE_INFO"]),
        *check_fee_details(details),
    ]
    unique = list(dict.fromkeys(problems))
    return Prepared(page, settlement, details, unique)
