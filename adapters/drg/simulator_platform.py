"""The simulated DRG platform's state and business calls, one function per interface: what it
keeps in memory (registration, hospitals, department matches, and per stay YBLSH + ZYCS + BAH
the front page, settlement list and fee-detail document), what it refuses, and what the
queries answer. The HTTP side and the faults' effects are in ``simulator``."""

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from adapters.drg import interfaces as names
from adapters.drg.grouping import STANDARD_DEPARTMENTS, group, quality_feedback
from adapters.drg.simulator_rules import (
    DETAILS_REQUIRED,
    HOSPITAL_REQUIRED,
    MATCH_REQUIRED,
    STAY_KEY,
    Failure,
    blank,
    check_fee_details,
    check_front_page,
    check_rows,
    check_settlement_list,
    missing,
    parse_date,
)
from hub.base.errors import PermanentError
from hub.base.json import Json

PATH_PREFIX = "/drgPms/nologin/drgUpload"
StayKey = tuple[str, str, str]  # YBLSH, ZYCS, BAH


@dataclass
class Faults:
    """What goes wrong next; the counters run down one request at a time."""

    latency_s: float = 0.0  # every request waits this long first
    unavailable: int = 0  # the next n requests are answered 503
    dropped: int = 0  # the next n requests lose their connection without an answer
    rejections: int = 0  # the next n business calls are refused with CODE 300
    rejection_memo: str = "FORCED"
    rejection_msg: str = "模拟的业务拒绝"

    def update(self, changes: Json) -> None:
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}")
            setattr(self, name, type(getattr(self, name))(value))


class RefusedError(PermanentError):
    def __init__(self, code: int, failures: list[Failure]) -> None:
        super().__init__(code, failures)
        self.code, self.failures = code, failures


def refuse(memo: str, msg: str, code: int = 300) -> RefusedError:
    """A business refusal: the platform answers HTTP 200 with CODE 101 / 300 and FAILDATA."""
    return RefusedError(code, [Failure(memo, msg)])


@dataclass
class Platform:
    app_id: str
    org_code: str
    faults: Faults
    registered: Json | None = None  # 机构认证注册
    hospitals: dict[str, Json] = field(default_factory=dict)  # by HOS_ID
    department_matches: dict[str, Json] = field(default_factory=dict)  # by HOS_DEPT_CODE
    front_pages: dict[StayKey, Json] = field(default_factory=dict)  # MAIN_DATA
    settlement_lists: dict[StayKey, Json] = field(default_factory=dict)  # MED_FEE_INFO
    fee_details: dict[StayKey, Json] = field(default_factory=dict)  # the whole document
    accepted: Counter[str] = field(default_factory=Counter)  # business calls, per interface
    uploads: list[tuple[str, StayKey]] = field(default_factory=list)  # accepted, in order
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def record_id(self, kind: str) -> str:
        return f"SX-{kind}-{next(self.ids):06d}"


InterfaceHandler = Callable[[Platform, Json], Json | None]


def decoded(form: Json, name: str) -> Any:
    """A business field is JSON text inside the form."""
    if blank(form.get(name)):
        raise refuse(name, f"{name} 不能为空")
    try:
        return orjson.loads(form[name])
    except orjson.JSONDecodeError:
        raise refuse(name, f"{name} 不是合法的JSON") from None


def checked(failures: list[Failure]) -> None:
    if failures:
        raise RefusedError(300, failures)


def stay_key(record: Json) -> StayKey:
    yblsh, zycs, bah = (str(record[name]).strip() for name in STAY_KEY)
    return yblsh, zycs, bah


# --- 机构, 医院, 科室 ---------------------------------------------------------------------


def org_regist(platform: Platform, form: Json) -> Json:
    checked(missing(form, ("ORG_NAME",)))
    if platform.registered is not None:
        raise refuse("ORG_CODE", "机构已注册，请使用注册修改接口")
    platform.registered = {"ORG_CODE": platform.org_code, "ORG_NAME": form["ORG_NAME"]}
    return {"ID": platform.record_id("ORG")}


def org_regist_modify(platform: Platform, form: Json) -> None:
    checked(missing(form, ("ORG_NAME",)))
    platform.registered = {"ORG_CODE": platform.org_code, "ORG_NAME": form["ORG_NAME"]}


def hospital(platform: Platform, form: Json, modify: bool = False) -> None:
    rows = decoded(form, "HOSPITALS")
    checked(check_rows(rows, "HOSPITALS", HOSPITAL_REQUIRED))
    failures = [
        Failure(f"HOSPITALS[{i}].HOS_ID", "医院不存在" if modify else "医院已上传，请使用修改接口")
        for i, row in enumerate(rows)
        if (str(row["HOS_ID"]) in platform.hospitals) != modify
    ]
    checked(failures)
    platform.hospitals.update({str(row["HOS_ID"]): row for row in rows})


def department_match(platform: Platform, form: Json, modify: bool = False) -> None:
    rows = decoded(form, "DEPT_MATCHS")
    checked(check_rows(rows, "DEPT_MATCHS", MATCH_REQUIRED))
    failures: list[Failure] = []
    for i, row in enumerate(rows):
        if str(row["S_DEPARTMENT_CODE"]) not in STANDARD_DEPARTMENTS:
            failures.append(Failure(f"DEPT_MATCHS[{i}].S_DEPARTMENT_CODE", "标准科室编码不存在"))
        if (str(row["HOS_DEPT_CODE"]) in platform.department_matches) != modify:
            msg = "科室未匹配" if modify else "科室已匹配，请使用修改接口"
            failures.append(Failure(f"DEPT_MATCHS[{i}].HOS_DEPT_CODE", msg))
    checked(failures)
    platform.department_matches.update({str(row["HOS_DEPT_CODE"]): row for row in rows})


def stand_department(platform: Platform, form: Json) -> Json:
    rows = [
        {"S_DEPARTMENT_CODE": code, "S_DEPARTMENT_NAME": name}
        for code, name in STANDARD_DEPARTMENTS.items()
    ]
    return {"ROWS": rows}


# --- 首页, 结算清单, 明细: uploaded once per stay, 冲销 before the next upload ------------------


def upload(
    platform: Platform, interface: str, store: dict[StayKey, Json], record: Json, kind: str
) -> Json:
    key = stay_key(record)
    if key in store:
        raise refuse("BAH", "该病案已上传，请先冲销再重新上传")
    store[key] = record
    platform.uploads.append((interface, key))
    return {"ID": platform.record_id(kind)}


def reverse(store: dict[StayKey, Json], form: Json, required: tuple[str, ...]) -> None:
    checked(missing(form, required))
    key = stay_key(form)
    if key not in store:
        raise refuse("BAH", "未找到需要冲销的记录")
    if "JZLSH" in required and str(store[key].get("JZLSH")) != str(form["JZLSH"]):
        raise refuse("JZLSH", "就诊流水号与上传的明细不一致")
    del store[key]


def front_page(platform: Platform, form: Json) -> Json:
    main = decoded(form, "MAIN_DATA")
    if not isinstance(main, dict):
        raise refuse("MAIN_DATA", "MAIN_DATA 应为对象")
    checked(check_front_page(main))
    return upload(platform, names.FRONT_PAGE, platform.front_pages, main, "BA")


def settlement_list(platform: Platform, form: Json) -> Json:
    info = decoded(form, "MED_FEE_INFO")
    if not isinstance(info, dict):
        raise refuse("MED_FEE_INFO", "MED_FEE_INFO 应为对象")
    checked(check_settlement_list(info))
    return upload(platform, names.SETTLEMENT_LIST, platform.settlement_lists, info, "JS")


def fee_details(platform: Platform, form: Json) -> Json:
    rows = decoded(form, "DETAILS")
    checked(check_fee_details(form, rows))
    document = {**{name: form[name] for name in DETAILS_REQUIRED}, "DETAILS": rows}
    return upload(platform, names.FEE_DETAILS, platform.fee_details, document, "MX")


# --- queries: rows for the uploaded front pages discharged in the window -----------------------


def in_window(platform: Platform, form: Json) -> list[Json]:
    bounds = []
    for name in ("START_DATE", "END_DATE"):
        value = form.get(name) or ""
        when = parse_date(value) if value else None
        if value and when is None:
            raise refuse(name, f"{name} 格式应为 yyyy-MM-dd HH:mm:ss")
        bounds.append(when)
    start, end = bounds
    found = []
    for main in platform.front_pages.values():
        discharged = parse_date(str(main["CYSJ"]))
        if (
            discharged
            and (start is None or discharged >= start)
            and (end is None or discharged <= end)
        ):
            found.append(main)
    return found


def lczk(platform: Platform, form: Json) -> Json:
    return {"ROWS": [quality_feedback(main) for main in in_window(platform, form)]}


def drg_result(platform: Platform, form: Json) -> Json:
    return {"ROWS": [group(main) for main in in_window(platform, form)]}


HANDLERS: dict[str, InterfaceHandler] = {
    names.ORG_REGIST: org_regist,
    names.ORG_REGIST_MODIFY: org_regist_modify,
    names.HOSPITAL: hospital,
    names.HOSPITAL_MODIFY: lambda p, f: hospital(p, f, modify=True),
    names.DEPARTMENT_MATCH: department_match,
    names.DEPARTMENT_MATCH_MODIFY: lambda p, f: department_match(p, f, modify=True),
    names.STAND_DEPARTMENT: stand_department,
    names.FRONT_PAGE: front_page,
    names.FRONT_PAGE_REVERSAL: lambda p, f: reverse(p.front_pages, f, STAY_KEY),
    names.SETTLEMENT_LIST: settlement_list,
    names.SETTLEMENT_LIST_REVERSAL: lambda p, f: reverse(p.settlement_lists, f, STAY_KEY),
    names.FEE_DETAILS: fee_details,
    names.FEE_DETAILS_REVERSAL: lambda p, f: reverse(p.fee_details, f, DETAILS_REQUIRED),
    names.QUALITY_FEEDBACK: lczk,
    names.GROUP_RESULT: drg_result,
}


def authenticate(platform: Platform, form: Json, interface: str) -> None:
    for name, expected in (("APP_ID", platform.app_id), ("ORG_CODE", platform.org_code)):
        if form.get(name) != expected:
            raise refuse(name, f"{name} 不正确", code=101)
    if platform.registered is None and interface != names.ORG_REGIST:
        raise refuse("ORG_CODE", "机构未注册")
