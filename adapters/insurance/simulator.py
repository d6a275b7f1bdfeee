"""A strict national insurance platform for the tests and the hospital's dry runs
(``jianhu simulate insurance``): the envelope checked (fields, the msgid's rule and that it is
new, the institution, the day's sign number, the insured area of a person named), sign-in
required, and the outpatient flow's order enforced: no fees without a registration, no
settlement without fees, no second settlement, a cancellation or a reversal (2601) only of
what exists. A cross-province person (insured outside the province) must come with
``out_setl_flag`` 1, and a social-security card (type 03) with its ``card_sn``.

Faults at ``/_faults``: the shared ones, and ``settled_then_dropped``: the next n settlements
are made, then the connection is dropped, as when the answer is lost after the platform
settled. ``GET /_state`` shows the visits and settlements."""

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from adapters.framework.simulated import FAULTS, Faults, add_fault_routes, injected
from adapters.insurance.envelope import Json
from hub.base.errors import PermanentError
from hub.base.hospital_time import HOSPITAL

SETTLE = ("2207", "2207A")
ENVELOPE = (
    "infno",
    "msgid",
    "mdtrtarea_admvs",
    "recer_sys_code",
    "infver",
    "opter_type",
    "opter",
    "opter_name",
    "inf_time",
    "fixmedins_code",
    "fixmedins_name",
    "input",
)


class PlatformRefusedError(PermanentError):
    """The platform says no (infcode -1 with the reason)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Person:
    psn_no: str
    certno: str
    name: str
    insuplc_admdvs: str
    card_sn: str = ""


@dataclass
class InsuranceFaults(Faults):
    settled_then_dropped: int = 0


@dataclass
class NationalPlatform:
    fixmedins_code: str
    persons: dict[str, Person]  # certno -> person
    hospital_area: str = "330602"
    sign_nos: set[str] = field(default_factory=set)
    msgids: dict[str, tuple[str, Json]] = field(default_factory=dict)  # msgid -> infno, input
    visits: dict[str, Json] = field(default_factory=dict)  # mdtrt_id -> visit
    settlements: dict[str, Json] = field(default_factory=dict)  # setl_id -> settlement
    serial: int = 0

    def handle(self, body: Any) -> Json:
        self._envelope(body)
        infno, data = body["infno"], body["input"]
        handler = getattr(self, f"_t{str(infno).lower()}", None)
        if handler is None:
            raise PlatformRefusedError(f"交易 {infno} 不支持")
        output: Json = handler(body, data)
        self.msgids[body["msgid"]] = (infno, data)
        return output

    def _envelope(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise PlatformRefusedError("报文不是 JSON 对象")
        missing = [name for name in ENVELOPE if body.get(name) in (None, "")]
        if missing:
            raise PlatformRefusedError(f"缺少 {', '.join(missing)}")
        if body["fixmedins_code"] != self.fixmedins_code:
            raise PlatformRefusedError("定点医药机构编号不符")
        msgid = str(body["msgid"])
        if not re.fullmatch(re.escape(self.fixmedins_code) + r"\d{18}", msgid):
            raise PlatformRefusedError("msgid 不符合 机构编号+yyyyMMddHHmmss+4位流水 规则")
        if msgid in self.msgids:
            raise PlatformRefusedError("报文ID重复")
        try:
            datetime.strptime(str(body["inf_time"]), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise PlatformRefusedError("inf_time 应为 yyyy-MM-dd HH:mm:ss") from None
        if body["infno"] != "9001" and body.get("sign_no") not in self.sign_nos:
            raise PlatformRefusedError("签到流水号无效,请先签到")

    def _person(self, body: Json, psn_no: str) -> Person:
        person = next((p for p in self.persons.values() if p.psn_no == psn_no), None)
        if person is None:
            raise PlatformRefusedError("人员编号不存在")
        if body.get("insuplc_admdvs") != person.insuplc_admdvs:
            raise PlatformRefusedError("参保地医保区划与人员不符")
        return person

    def _cross(self, person: Person) -> bool:
        return person.insuplc_admdvs[:2] != self.hospital_area[:2]

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{datetime.now(HOSPITAL):%Y%m%d}{self.serial:08d}"

    def _t9001(self, body: Json, data: Json) -> Json:
        sign_in = data.get("signIn") or {}
        if not sign_in.get("opter_no") or not sign_in.get("ip"):
            raise PlatformRefusedError("签到需要 opter_no 和 ip")
        number = self._next("SN")
        self.sign_nos.add(number)
        return {"signinoutb": {"sign_no": number, "sign_time": body["inf_time"]}}

    def _t1101(self, body: Json, data: Json) -> Json:
        query = data.get("data") or {}
        kind, number = query.get("mdtrt_cert_type"), query.get("mdtrt_cert_no")
        if kind not in ("01", "02", "03"):
            raise PlatformRefusedError("就诊凭证类型应为 01/02/03")
        person = self.persons.get(str(number))
        if person is None:
            raise PlatformRefusedError("未查询到人员参保信息")
        if kind == "03" and query.get("card_sn") != person.card_sn:
            raise PlatformRefusedError("社会保障卡识别码(card_sn)缺失或不符")
        return {
            "baseinfo": {"psn_no": person.psn_no, "certno": person.certno, "psn_name": person.name},
            "insuinfo": [
                {"insutype": "310", "insuplc_admdvs": person.insuplc_admdvs, "balc": 1000.0}
            ],
        }

    def _t2201(self, body: Json, data: Json) -> Json:
        visit = data.get("data") or {}
        person = self._person(body, str(visit.get("psn_no")))
        self._out_of_province(person, visit)
        mdtrt_id = self._next("MD")
        self.visits[mdtrt_id] = {
            "psn_no": person.psn_no,
            "fees": {},
            "settled": "",
            "cancelled": False,
        }
        return {
            "data": {
                "mdtrt_id": mdtrt_id,
                "psn_no": person.psn_no,
                "ipt_otp_no": visit.get("ipt_otp_no"),
            }
        }

    def _t2204(self, body: Json, data: Json) -> Json:
        lines = data.get("feedetail")
        if not isinstance(lines, list) or not lines:
            raise PlatformRefusedError("feedetail 不能为空")
        results = []
        for line in lines:
            visit = self._open_visit(body, line)
            sn = str(line.get("feedetl_sn") or "")
            if not sn or sn in visit["fees"]:
                raise PlatformRefusedError(f"费用明细流水号 {sn!r} 缺失或重复")
            amount = float(line.get("det_item_fee_sumamt") or 0)
            visit["fees"][sn] = {"amount": amount, "batch": line.get("chrg_bchno", "")}
            results.append({"feedetl_sn": sn, "det_item_fee_sumamt": amount})
        return {"result": results}

    def _t2206(self, body: Json, data: Json) -> Json:
        visit, mdtrt_id = self._settleable(body, data.get("data") or {})
        return {"setlinfo": self._split(visit, mdtrt_id, "", body["msgid"])}

    def _t2207(self, body: Json, data: Json) -> Json:
        settle = data.get("data") or {}
        visit, mdtrt_id = self._settleable(body, settle)
        person = self._person(body, visit["psn_no"])
        self._out_of_province(person, settle)
        setl_id = self._next("ST")
        info = self._split(visit, mdtrt_id, setl_id, body["msgid"])
        visit["settled"] = setl_id
        self.settlements[setl_id] = {**info, "msgid": body["msgid"], "cancelled": False}
        return {"setlinfo": info}

    _t2207a = _t2207

    def _t2208(self, body: Json, data: Json) -> Json:
        cancel = data.get("data") or {}
        settlement = self.settlements.get(str(cancel.get("setl_id")))
        if settlement is None or settlement["cancelled"]:
            raise PlatformRefusedError("结算记录不存在或已撤销")
        self._withdraw(settlement)
        return {"setlinfo": {"setl_id": cancel.get("setl_id")}}

    def _t2601(self, body: Json, data: Json) -> Json:
        reversal = data.get("data") or {}
        original = self.msgids.get(str(reversal.get("omsgid")))
        if original is None or original[0] != reversal.get("oinfno"):
            raise PlatformRefusedError("原交易不存在")
        settled = next(
            (s for s in self.settlements.values() if s["msgid"] == reversal.get("omsgid")), None
        )
        if settled is not None and not settled["cancelled"]:
            self._withdraw(settled)
        return {"data": {"omsgid": reversal.get("omsgid"), "oinfno": reversal.get("oinfno")}}

    def _open_visit(self, body: Json, item: Json) -> Json:
        visit = self.visits.get(str(item.get("mdtrt_id")))
        if visit is None or visit["cancelled"]:
            raise PlatformRefusedError("就诊记录不存在,请先挂号")
        if visit["psn_no"] != item.get("psn_no"):
            raise PlatformRefusedError("就诊记录与人员不符")
        if visit["settled"]:
            raise PlatformRefusedError("该就诊已结算")
        self._person(body, visit["psn_no"])
        return visit

    def _settleable(self, body: Json, item: Json) -> tuple[Json, str]:
        visit = self._open_visit(body, item)
        if not visit["fees"]:
            raise PlatformRefusedError("没有待结算的费用明细")
        return visit, str(item["mdtrt_id"])

    def _out_of_province(self, person: Person, item: Json) -> None:
        if self._cross(person) and item.get("out_setl_flag") != "1":
            raise PlatformRefusedError("异地就医须标记 out_setl_flag=1")

    def _split(self, visit: Json, mdtrt_id: str, setl_id: str, msgid: str) -> Json:
        total = round(sum(fee["amount"] for fee in visit["fees"].values()), 2)
        fund = round(total * 0.7, 2)
        return {
            "mdtrt_id": mdtrt_id,
            "setl_id": setl_id,
            "psn_no": visit["psn_no"],
            "medfee_sumamt": total,
            "fund_pay_sumamt": fund,
            "psn_cash_pay": round(total - fund, 2),
            "medins_setl_id": msgid,
        }

    def _withdraw(self, settlement: Json) -> None:
        settlement["cancelled"] = True
        visit = self.visits[settlement["mdtrt_id"]]
        visit["settled"] = ""


PLATFORM = web.AppKey("national_platform", NationalPlatform)


async def call_service(request: web.Request) -> web.StreamResponse:
    fault = await injected(request)
    if fault is not None:
        return fault
    platform, faults = request.app[PLATFORM], request.app[FAULTS]
    try:
        body = orjson.loads(await request.read())
        if faults.take_rejection():
            raise PlatformRefusedError("模拟的业务拒绝")
        output = platform.handle(body)
    except orjson.JSONDecodeError:
        return _answer(-1, error="报文不是 JSON")
    except PlatformRefusedError as refused:
        return _answer(-1, error=refused.message)
    assert isinstance(faults, InsuranceFaults)
    if body.get("infno") in SETTLE and faults.settled_then_dropped:
        faults.settled_then_dropped -= 1
        if request.transport is not None:
            request.transport.abort()  # settled, and the answer is lost
        return web.Response(status=500)
    return _answer(0, output)


def _answer(code: int, output: Json | None = None, error: str = "") -> web.Response:
    now = datetime.now(HOSPITAL)
    body = {
        "infcode": code,
        "inf_refmsgid": f"330602{now:%Y%m%d%H%M%S}{0:010d}",
        "refmsg_time": f"{now:%Y%m%d%H%M%S}000",
        "respond_time": f"{now:%Y%m%d%H%M%S}000",
        "err_msg": error,
        "warn_msg": "",
        "output": output or {},
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def state(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    body = {
        "visits": platform.visits,
        "settlements": platform.settlements,
        "persons": {k: asdict(v) for k, v in platform.persons.items()},
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


DEFAULT_PERSONS = {
    "330602199001010011": Person("33060200000001", "330602199001010011", "张三", "330602"),
    "330102198502020022": Person("33010200000002", "330102198502020022", "李四", "330100"),
    "110105197803030033": Person(
        "11010500000003", "110105197803030033", "王五", "110105", card_sn="CSN0003"
    ),
}


def create_app(
    fixmedins_code: str = "H33060200001",
    persons: dict[str, Person] | None = None,
    path: str = "/fsi/api/callService",
) -> web.Application:
    app = web.Application()
    app[PLATFORM] = NationalPlatform(fixmedins_code, dict(persons or DEFAULT_PERSONS))
    add_fault_routes(app, InsuranceFaults())
    app.router.add_post(path, call_service)
    app.router.add_get("/_state", state)
    return app
