"""The DRG point-method platform's interfaces (drgPms, spec ``drg_frontpage.md`` §3).

Every call is a form post: ``APP_ID`` and ``ORG_CODE`` (added here from the configuration, so
they never enter the ledger's content hash) plus business fields whose values are JSON text
(``MAIN_DATA``, ``MED_FEE_INFO``, ``DETAILS``, ``HOSPITALS``, ``DEPT_MATCHS``). ``v1`` creates or
uploads, ``v2`` modifies, or for the three inpatient documents reverses (冲销) an upload.

Business keys in the ledger:

* front page (baInfo), settlement list (medicalFeeInfo), fee details (details): 病案号 + 住院次数
  (``business_key(BAH, ZYCS)``, for example ``"0012345-2"``). The platform itself identifies a
  record by YBLSH + ZYCS + BAH; YBLSH (医保流水号) is carried in the payload, so the reversal
  can be built from the accepted upload alone.
* orgRegist: the ORG_CODE; hospital: HOS_ID; departmentMatch: the hospital's department code.

Correcting an accepted front page, settlement list or fee-detail document is 冲销 (v2) first,
then the upload again (v1): the platform refuses a second upload of the same key until then,
and a fee-detail document is reversed only as a whole, never partly.

The Zhejiang specification is not public: the paths follow a published deployment of the same
platform and every one of them can be overridden in ``DrgConfig.paths``."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.drg.config import DrgConfig
from adapters.framework.delivery import Adapter
from adapters.framework.interface import Interface, ReceiverAnswer, Reception, Request, Response
from adapters.framework.transport import HttpTransport, TransportError
from hub.base.errors import JianhuError
from hub.base.json import Json

ADAPTER = "drg"

ORG_REGIST = "orgRegist/v1"  # 机构认证注册
ORG_REGIST_MODIFY = "orgRegist/v2"  # 机构认证注册修改
HOSPITAL = "hospital/v1"  # 医院信息 (one or many: HOSPITALS is always an array)
HOSPITAL_MODIFY = "hospital/v2"  # 医院信息修改
DEPARTMENT_MATCH = "departmentMatch/v1"  # 科室匹配
DEPARTMENT_MATCH_MODIFY = "departmentMatch/v2"  # 科室匹配修改
STAND_DEPARTMENT = "standDepartment/v1"  # 标准科室查询
FRONT_PAGE = "baInfo/v1"  # 住院病案首页
FRONT_PAGE_REVERSAL = "baInfo/v2"  # 住院病案首页冲销
SETTLEMENT_LIST = "medicalFeeInfo/v1"  # 住院费用结算清单
SETTLEMENT_LIST_REVERSAL = "medicalFeeInfo/v2"  # 结算清单冲销
FEE_DETAILS = "details/v1"  # 住院诊疗费用明细
FEE_DETAILS_REVERSAL = "details/v2"  # 明细冲销 (the whole document only)
QUALITY_FEEDBACK = "lczk/v2"  # 病案质控反馈查询
GROUP_RESULT = "drgResult/v1"  # 分组结果查询

QUERIES = (STAND_DEPARTMENT, QUALITY_FEEDBACK, GROUP_RESULT)
SUCCESS, VALIDATION_FAILURES = "200", ("101", "300")


def business_key(bah: object, zycs: object) -> str:
    """病案号 + 住院次数; ZYCS is an integer, so the last ``-`` always separates the two."""
    return f"{bah}-{zycs}"


@dataclass(frozen=True)
class DrgInterface(Interface):
    """A form interface that adds the institution's credentials to every request."""

    credentials: Mapping[str, str] = field(default_factory=dict)

    def request(self, payload: Json) -> Request:
        return super().request({**self.credentials, **payload})


def classify(response: Response) -> ReceiverAnswer:
    """``CODE`` 200 accepted; 101 / 300 (validation) and unknown codes rejected, a person
    looks; a 5xx, a timeout-like 408/429 or a body that is not the platform's JSON failed, so
    it is resent. A 4xx is a wrong path or a refused call: resending would not help."""
    if response.status >= 500 or response.status in (408, 429):
        return ReceiverAnswer(Reception.FAILED, f"HTTP {response.status}")
    if response.status >= 400:
        return ReceiverAnswer(Reception.REJECTED, f"HTTP {response.status}: {_text(response)}")
    try:
        body = response.json()
    except ValueError:
        return ReceiverAnswer(Reception.FAILED, f"unreadable answer: {_text(response)}")
    if not isinstance(body, dict) or "CODE" not in body:
        return ReceiverAnswer(Reception.FAILED, f"unreadable answer: {_text(response)}")
    code = str(body["CODE"])
    if code == SUCCESS:
        return ReceiverAnswer(Reception.ACCEPTED, external_id=_record_id(body.get("DATA")))
    if code in VALIDATION_FAILURES:
        return ReceiverAnswer(Reception.REJECTED, f"{code} {_failure(body)}".strip())
    return ReceiverAnswer(
        Reception.REJECTED, f"unknown CODE {code}: {body.get('MESSAGE', '')}".strip()
    )


def _text(response: Response) -> str:
    return response.body[:200].decode(errors="replace")


def _failure(body: Json) -> str:
    """``FAILDATA`` may be one object or a list of them (one per failed record)."""
    faildata = body.get("FAILDATA")
    items = faildata if isinstance(faildata, list) else [faildata] if faildata else []
    parts = [
        f"{item.get('MEMO', '')}: {item.get('MSG', '')}".strip(": ")
        for item in items
        if isinstance(item, dict)
    ]
    return "; ".join(parts) or str(body.get("MESSAGE", ""))


def _record_id(data: Any) -> str:
    """The platform's id of the accepted record, when it gives one (not every deployment
    does: then the reversal is built from YBLSH + ZYCS + BAH alone)."""
    if isinstance(data, dict):
        for key in ("ID", "RECORD_ID"):
            if data.get(key):
                return str(data[key])
    return ""


def _stay(record: Json) -> Json:
    """YBLSH + ZYCS + BAH: how the platform identifies one inpatient stay's record."""
    return {key: record[key] for key in ("YBLSH", "ZYCS", "BAH")}


def front_page_reversal(upload: Json, external_id: str) -> Json:
    return _stay(upload["MAIN_DATA"])


def settlement_list_reversal(upload: Json, external_id: str) -> Json:
    return _stay(upload["MED_FEE_INFO"])


def fee_details_reversal(upload: Json, external_id: str) -> Json:
    # the whole document: JZLSH (就诊流水号) as well, and never a subset of DETAILS
    return {**_stay(upload), "JZLSH": upload["JZLSH"]}


def build_interfaces(config: DrgConfig) -> dict[str, Interface]:
    credentials = {"APP_ID": config.app_id, "ORG_CODE": config.org_code}

    def form(name: str, **options: Any) -> DrgInterface:
        return DrgInterface(
            name,
            config.path(name),
            classify,
            encoding="form",
            credentials=credentials,
            **options,
        )

    reversible = {
        FRONT_PAGE: (FRONT_PAGE_REVERSAL, front_page_reversal),
        SETTLEMENT_LIST: (SETTLEMENT_LIST_REVERSAL, settlement_list_reversal),
        FEE_DETAILS: (FEE_DETAILS_REVERSAL, fee_details_reversal),
    }
    plain = (
        ORG_REGIST,
        ORG_REGIST_MODIFY,
        HOSPITAL,
        HOSPITAL_MODIFY,
        DEPARTMENT_MATCH,
        DEPARTMENT_MATCH_MODIFY,
        FRONT_PAGE_REVERSAL,
        SETTLEMENT_LIST_REVERSAL,
        FEE_DETAILS_REVERSAL,
        *QUERIES,
    )
    interfaces: dict[str, Interface] = {name: form(name) for name in plain}
    for upload, (reversal, payload) in reversible.items():
        interfaces[upload] = form(
            upload, cancel=reversal, cancel_before_reupload=True, cancel_payload=payload
        )
    return interfaces


def build_adapter(config: DrgConfig, transport: HttpTransport | None = None) -> Adapter:
    transport = transport or HttpTransport(config.base_url, timeout_s=config.timeout_s)
    return Adapter(ADAPTER, transport, build_interfaces(config))


class QueryError(JianhuError):
    """The platform refused a query, or could not be reached."""


async def query(adapter: Adapter, interface: str, fields: Json) -> list[Json]:
    """A query (标准科室, 质控反馈, 分组结果) is not a ledger submission: it changes nothing at
    the platform, so it is simply asked again. Answers ``DATA.ROWS``."""
    target = adapter.interface(interface)
    try:
        response = await adapter.transport.send(target.request(fields))
    except TransportError as exc:
        raise QueryError(f"{interface}: {exc}") from exc
    answer = target.classify(response)
    if answer.outcome is not Reception.ACCEPTED:
        raise QueryError(f"{interface}: {answer.detail}")
    data = response.json().get("DATA") or {}
    rows = data.get("ROWS", []) if isinstance(data, dict) else []
    return [row for row in rows if isinstance(row, dict)]
