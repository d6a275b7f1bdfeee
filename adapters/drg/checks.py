"""Checks of the DRG documents before they are sent: each field against its entry of the field
table (required, value domain, code shape, date format, minimum), then the rules between fields
(admission not after discharge) and what the table cannot say (more diagnoses or operations
than the front page has slots for). A problem names the platform's field code, as the
platform's own rejection (FAILDATA.MEMO) would, and says in Chinese what is wrong, for the
person who corrects the record in the HIS. No problems: the documents can be sent."""

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from adapters.drg import stay as fhir
from adapters.drg.fields import FieldSpec, table
from adapters.drg.stay import Stay
from hub.base.json import Json

# ICD-10 医保版 / 国家临床版: category J18, J18.9, extension J18.900, x placeholder for a
# category without subcategories (I10.x00), and further extension codes (J18.900x001)
ICD10 = re.compile(r"[A-Z]\d{2}(\.[0-9x]\d{0,2}(x\d{3})?)?")
# ICD-9-CM-3 医保版: 33.24, the six-digit extension 33.2400 and x-codes 00.6600x004
ICD9CM3 = re.compile(r"\d{2}(\.\d{1,4}(x\d{3})?)?")
SHAPES = {"icd10": (ICD10, "ICD-10"), "icd9cm3": (ICD9CM3, "ICD-9-CM-3")}
TIME_FORMATS = {"date": ("%Y-%m-%d",), "datetime": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")}
OTHER_DIAGNOSIS_SLOTS, OPERATION_SLOTS = 15, 8


@dataclass(frozen=True)
class FieldProblem:
    field: str  # the platform's field code, e.g. "LYFS" or "DETAILS[2].PRICE"
    message: str


def _label(spec: FieldSpec, prefix: str) -> str:
    return f"{prefix}{spec.field}"


def check_field(spec: FieldSpec, record: Json, prefix: str = "") -> FieldProblem | None:
    """One field of one record against its table entry."""
    where = _label(spec, prefix)
    value = record.get(spec.field)
    if value is None or value == "":
        if spec.required and spec.applies(record):
            return FieldProblem(where, f"{spec.name} {where} 不能为空")
        return None
    text = str(value)
    if spec.domain and text not in spec.domain:
        allowed = "/".join(spec.domain)
        return FieldProblem(where, f"{spec.name} {where} 取值应为 {allowed}: {text}")
    if spec.format in SHAPES:
        shape, system = SHAPES[spec.format]
        if not shape.fullmatch(text):
            return FieldProblem(where, f"{spec.name} {where} 不是 {system} 编码: {text}")
    if spec.format in TIME_FORMATS and _moment(text, spec.format) is None:
        shown = "yyyy-MM-dd" if spec.format == "date" else "yyyy-MM-dd HH:mm:ss"
        return FieldProblem(where, f"{spec.name} {where} 日期格式应为 {shown}: {text}")
    if spec.format == "integer" and not (text.isdigit() and int(text) > 0):
        return FieldProblem(where, f"{spec.name} {where} 应为正整数: {text}")
    if spec.minimum is not None and not _at_least(text, spec.minimum):
        return FieldProblem(where, f"{spec.name} {where} 不能小于 {spec.minimum}: {text}")
    return None


def _moment(text: str, fmt: str) -> datetime | None:
    for pattern in TIME_FORMATS[fmt]:
        try:
            parsed = datetime.strptime(text, pattern)
        except ValueError:
            continue
        if parsed.strftime(pattern) == text:  # zero-padded, as the platform wants
            return parsed
    return None


def _at_least(text: str, minimum: Decimal) -> bool:
    try:
        return Decimal(text) >= minimum
    except InvalidOperation:
        return False


def check_record(
    specs: tuple[FieldSpec, ...], record: Json, prefix: str = ""
) -> list[FieldProblem]:
    return [p for spec in specs if (p := check_field(spec, record, prefix)) is not None]


def check_front_page(main: Json) -> list[FieldProblem]:
    problems = check_record(table().front_page, main)
    admitted = _moment(str(main.get("RYSJ", "")), "datetime")
    discharged = _moment(str(main.get("CYSJ", "")), "datetime")
    if admitted and discharged and admitted > discharged:
        problems.append(
            FieldProblem("CYSJ", f"出院时间 CYSJ {main['CYSJ']} 早于入院时间 RYSJ {main['RYSJ']}")
        )
    return problems


def check_settlement_list(info: Json) -> list[FieldProblem]:
    return check_record(table().settlement_list, info)


def check_fee_details(document: Json) -> list[FieldProblem]:
    problems = check_record(table().fee_form, document)
    rows = document.get("DETAILS")
    if not isinstance(rows, list) or not rows:
        return [*problems, FieldProblem("DETAILS", "住院诊疗费用明细 DETAILS 没有收费明细")]
    for index, row in enumerate(rows):
        problems += check_record(table().fee_row, row, f"DETAILS[{index}].")
    return problems


def check_capacity(stay: Stay) -> list[FieldProblem]:
    """The front page has 15 other-diagnosis and 8 operation slots: what does not fit would be
    dropped without a word, so the coder chooses in the HIS instead."""
    problems = []
    others = len(fhir.diagnoses(stay)) - 1
    if others > OTHER_DIAGNOSIS_SLOTS:
        problems.append(
            FieldProblem(
                f"JBDM{OTHER_DIAGNOSIS_SLOTS}",
                f"其他诊断有 {others} 个, 病案首页最多 {OTHER_DIAGNOSIS_SLOTS} 个",
            )
        )
    operations = len(fhir.operations(stay))
    if operations > OPERATION_SLOTS:
        problems.append(
            FieldProblem(
                f"SSJCZBM{OPERATION_SLOTS}",
                f"手术及操作有 {operations} 个, 病案首页最多 {OPERATION_SLOTS} 个",
            )
        )
    return problems
