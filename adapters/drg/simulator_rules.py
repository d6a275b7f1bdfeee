"""The DRG platform simulator's field rules: what a record must carry and the value formats the
spec gives (``drg_frontpage.md`` §2, §3). A broken rule is a ``Failure`` whose ``memo`` names
the field, as the platform's ``FAILDATA.MEMO`` does.

Field names the spec does not give are chosen here and kept in one place:

* main diagnosis: ``JBDM`` (ICD-10 code) and ``ZYZD`` (name); other diagnoses ``JBDM1`` ...
  ``JBDM15``; operations ``SSJCZBM1`` ... ``SSJCZBM8`` (ICD-9-CM-3) with dates ``SSJCZRQn``.
* 拟接收医疗机构名称: ``YZZY_YLJG`` when LYFS is 2 (医嘱转院), ``WSY_YLJG`` when LYFS is 3
  (医嘱转社区卫生服务机构/乡镇卫生院), the front-page field codes of §2.
* settlement list (MED_FEE_INFO): YBLSH, ZYCS, BAH and ZFY (总费用) required."""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.base.json import Json


@dataclass(frozen=True)
class Failure:
    memo: str  # the field's code, e.g. "BAH" or "DETAILS[2].PRICE"
    msg: str


STAY_KEY = ("YBLSH", "ZYCS", "BAH")  # 医保流水号, 住院次数, 病案号
FRONT_PAGE_REQUIRED = (*STAY_KEY, "XB", "CSRQ", "RYSJ", "CYSJ", "LYFS", "JBDM", "ZYZD")
SETTLEMENT_REQUIRED = (*STAY_KEY, "ZFY")
DETAILS_REQUIRED = (*STAY_KEY, "JZLSH")  # JZLSH: 就诊流水号
DETAIL_ROW_REQUIRED = ("HOS_DETAIL_CODE", "HOS_DETAIL_NAME", "D_NUMBER", "PRICE")
HOSPITAL_REQUIRED = ("HOS_ID", "HOS_NAME")
MATCH_REQUIRED = ("HOS_DEPT_CODE", "HOS_DEPT_NAME", "S_DEPARTMENT_CODE")

SEXES = {"1", "2", "9"}  # 男, 女, 未说明
DISCHARGE_WAYS = {"1", "2", "3", "4", "5", "9"}  # 离院方式
# 拟接收医疗机构名称, required when the patient is sent on to another institution
RECEIVING_INSTITUTION = {"2": "YZZY_YLJG", "3": "WSY_YLJG"}
DATES = ("CSRQ", "RYSJ", "CYSJ", "ZKSJ1", "ZKSJ2", "ZKSJ3")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?")
# ICD-10 (医保版): category J18, subcategory J18.9, extension J18.900, a placeholder x for a
# category without subcategories (I10.x00), and extension codes J18.900x001
ICD10 = re.compile(r"[A-Z]\d{2}(\.[0-9x]\d{0,2}(x\d{3})?)?")
# ICD-9-CM-3 (医保版): 33.24, 33.2400, and x-codes 00.6600x004
ICD9CM3 = re.compile(r"\d{2}(\.\d{1,4}(x\d{3})?)?")


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing(record: Json, fields: Iterable[str], prefix: str = "") -> list[Failure]:
    return [
        Failure(f"{prefix}{name}", f"{prefix}{name} 不能为空")
        for name in fields
        if blank(record.get(name))
    ]


def parse_date(value: str) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` or ``yyyy-MM-dd``, zero-padded, and a real date."""
    if not _DATE.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S" if " " in value else "%Y-%m-%d")
    except ValueError:
        return None


def check_front_page(main: Json) -> list[Failure]:
    """MAIN_DATA of a 住院病案首页 upload."""
    failures = missing(main, FRONT_PAGE_REQUIRED)
    failures += _formats(main)
    receiving = RECEIVING_INSTITUTION.get(str(main.get("LYFS", "")))
    if receiving and blank(main.get(receiving)):
        failures.append(Failure(receiving, f"离院方式为{main['LYFS']}时{receiving}不能为空"))
    return failures


def _formats(main: Json) -> list[Failure]:
    failures = [_positive_integer(main, "ZYCS")]
    failures += [_in(main, "XB", SEXES), _in(main, "LYFS", DISCHARGE_WAYS)]
    failures += [_date(main, name) for name in DATES]
    failures += [_code(main, "JBDM", ICD10, "ICD-10")]
    failures += [_code(main, f"JBDM{n}", ICD10, "ICD-10") for n in range(1, 16)]
    failures += [_code(main, f"SSJCZBM{n}", ICD9CM3, "ICD-9-CM-3") for n in range(1, 9)]
    failures += [_date(main, f"SSJCZRQ{n}") for n in range(1, 9)]
    admitted, discharged = (_when(main, "RYSJ"), _when(main, "CYSJ"))
    if admitted and discharged and discharged < admitted:
        failures.append(Failure("CYSJ", "出院时间早于入院时间"))
    return [failure for failure in failures if failure is not None]


def _when(record: Json, name: str) -> datetime | None:
    value = record.get(name)
    return parse_date(value) if isinstance(value, str) else None


def _date(record: Json, name: str, prefix: str = "") -> Failure | None:
    value = record.get(name)
    if blank(value) or _when(record, name):
        return None
    return Failure(
        f"{prefix}{name}", f"{prefix}{name} 日期格式应为 yyyy-MM-dd HH:mm:ss 或 yyyy-MM-dd: {value}"
    )


def _in(record: Json, name: str, allowed: set[str]) -> Failure | None:
    value = record.get(name)
    if blank(value) or str(value) in allowed:
        return None
    return Failure(name, f"{name} 取值应为 {'/'.join(sorted(allowed))}: {value}")


def _code(record: Json, name: str, shape: re.Pattern[str], system: str) -> Failure | None:
    value = record.get(name)
    if blank(value) or (isinstance(value, str) and shape.fullmatch(value)):
        return None
    return Failure(name, f"{name} 不是 {system} 编码: {value}")


def _positive_integer(record: Json, name: str) -> Failure | None:
    value = record.get(name)
    if blank(value) or (str(value).isdigit() and int(str(value)) > 0):
        return None
    return Failure(name, f"{name} 应为正整数: {value}")


def _amount(record: Json, name: str, prefix: str = "") -> Failure | None:
    value = record.get(name)
    if blank(value):
        return None
    try:
        if Decimal(str(value)) >= 0:
            return None
    except InvalidOperation:
        pass
    return Failure(f"{prefix}{name}", f"{prefix}{name} 应为非负金额: {value}")


def check_settlement_list(info: Json) -> list[Failure]:
    """MED_FEE_INFO of a 住院费用结算清单 upload."""
    failures = missing(info, SETTLEMENT_REQUIRED)
    checked = [_positive_integer(info, "ZYCS"), _amount(info, "ZFY")]
    return failures + [failure for failure in checked if failure is not None]


def check_fee_details(form: Json, rows: Any) -> list[Failure]:
    """A 住院诊疗费用明细 document: the stay's key on the form, then every DETAILS row."""
    failures = missing(form, DETAILS_REQUIRED)
    if not isinstance(rows, list) or not rows:
        return [*failures, Failure("DETAILS", "DETAILS 应为非空数组")]
    for index, row in enumerate(rows):
        prefix = f"DETAILS[{index}]."
        if not isinstance(row, dict):
            failures.append(Failure(prefix.rstrip("."), "明细应为对象"))
            continue
        failures += missing(row, DETAIL_ROW_REQUIRED, prefix)
        checked = [_amount(row, "PRICE", prefix), _amount(row, "D_NUMBER", prefix)]
        checked.append(_date(row, "CYSJ", prefix))
        failures += [failure for failure in checked if failure is not None]
    return failures


def check_rows(rows: Any, field: str, required: Sequence[str]) -> list[Failure]:
    """HOSPITALS / DEPT_MATCHS: a non-empty JSON array of objects (one row is a single
    upload, several a batch)."""
    if not isinstance(rows, list) or not rows:
        return [Failure(field, f"{field} 应为非空数组")]
    failures: list[Failure] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            failures.append(Failure(f"{field}[{index}]", "应为对象"))
        else:
            failures += missing(row, required, f"{field}[{index}].")
    return failures
