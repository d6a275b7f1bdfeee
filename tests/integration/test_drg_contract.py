"""The DRG adapter's contract against the platform simulator, over real HTTP, through the
delivery engine on the SQLite ledger with a fake clock: registration, hospital info, standard
departments and department matching; for the front page, the settlement list and the fee
details: send, transient failure then success, permanent rejection naming the field, duplicate,
correction by 冲销 then re-upload; an outage where everything is delivered exactly once; a
wrong APP_ID. Then the classifier and the simulator's field rules on their own."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.drg import interfaces as drg
from adapters.drg.config import DrgConfig
from adapters.drg.interfaces import build_adapter, business_key, classify, query
from adapters.drg.simulator import PLATFORM, Faults, Platform, StayKey, create_app
from adapters.drg.simulator_rules import check_fee_details, check_front_page
from adapters.framework.delivery import Courier, RetryPolicy
from adapters.framework.interface import ReceiverAnswer, Reception, Response
from adapters.framework.transport import HttpTransport
from hub.base.json import Json
from store.ledger import ACCEPTED, CANCELLED, FAILED, PENDING, REJECTED
from store.sqlite import SqliteStore

APP_ID, ORG_CODE = "SX-DRG-APP-0001", "330602001"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    engine: Courier
    platform: Platform
    faults: Faults
    clock: Clock
    url: str

    async def submit(self, interface: str, key: str, payload: Json) -> Any:
        return await self.engine.submit(drg.ADAPTER, interface, key, payload)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    faults = Faults()
    app = create_app(faults, app_id=APP_ID, org_code=ORG_CODE)
    server = TestServer(app)
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    store = SqliteStore(tmp_path / "jianhu.sqlite3")
    await store.open()
    adapter = build_adapter(DrgConfig(base_url=url, app_id=APP_ID, org_code=ORG_CODE, timeout_s=5))
    clock = Clock()
    engine = Courier(
        store.ledger,
        {drg.ADAPTER: adapter},
        RetryPolicy(first_delay_s=10, max_delay_s=60, max_attempts=6),
        clock,
    )
    yield Rig(engine, app[PLATFORM], faults, clock, url)
    await adapter.transport.close()
    await store.close()
    await server.close()


@pytest.fixture
async def registered(rig: Rig) -> Rig:
    done = await rig.submit(drg.ORG_REGIST, ORG_CODE, {"ORG_NAME": "绍兴市某人民医院"})
    assert done.status == ACCEPTED
    return rig


def main_data(bah: str = "0012345", zycs: int = 1, **changes: Any) -> Json:
    """A front page's MAIN_DATA: community-acquired pneumonia, discharged home."""
    main: Json = {
        "HOS_ID": ORG_CODE,
        "YBLSH": f"YB{bah}{zycs:02d}",
        "JZLSH": f"ZY{bah}{zycs:02d}",
        "BAH": bah,
        "ZYCS": zycs,
        "XB": "1",
        "CSRQ": "1956-03-14",
        "NL": 70,
        "RYTJ": "2",
        "RYSJ": "2026-11-20 09:30:00",
        "RYKBBM": "A03.01",
        "CYSJ": "2026-11-26 10:00:00",
        "CYKBBM": "A03.01",
        "SJZYTS": 6,
        "ZYZD": "肺炎",
        "JBDM": "J18.900",
        "JBDM1": "I10.x00",
        "LYFS": "1",
        "ZFY": "8650.32",
    }
    return {**main, **changes}


def front_page(bah: str = "0012345", zycs: int = 1, **changes: Any) -> Json:
    return {"MAIN_DATA": main_data(bah, zycs, **changes)}


def settlement_list(bah: str = "0012345", zycs: int = 1, **changes: Any) -> Json:
    info = {"YBLSH": f"YB{bah}{zycs:02d}", "ZYCS": zycs, "BAH": bah, "ZFY": "8650.32"}
    return {"MED_FEE_INFO": {**info, "TCZF": "6055.22", "GRZF": "2595.10", **changes}}


def fee_details(bah: str = "0012345", zycs: int = 1, **changes: Any) -> Json:
    row = {
        "CYSJ": "2026-11-26 10:00:00",
        "HOS_DETAIL_CODE": "250101001",
        "HOS_DETAIL_NAME": "血细胞分析",
        "D_NUMBER": "1",
        "PRICE": "20.00",
        **changes,
    }
    stay = {"YBLSH": f"YB{bah}{zycs:02d}", "JZLSH": f"ZY{bah}{zycs:02d}", "ZYCS": zycs}
    return {**stay, "BAH": bah, "DETAILS": [row]}


@dataclass(frozen=True)
class Document:
    upload: str
    reversal: str
    build: Callable[..., Json]
    correction: dict[str, str]
    stored: Callable[[Platform], dict[StayKey, Json]]


DOCUMENTS = [
    Document(
        drg.FRONT_PAGE,
        drg.FRONT_PAGE_REVERSAL,
        front_page,
        {"JBDM": "J15.900"},
        lambda p: p.front_pages,
    ),
    Document(
        drg.SETTLEMENT_LIST,
        drg.SETTLEMENT_LIST_REVERSAL,
        settlement_list,
        {"ZFY": "8700.00"},
        lambda p: p.settlement_lists,
    ),
    Document(
        drg.FEE_DETAILS,
        drg.FEE_DETAILS_REVERSAL,
        fee_details,
        {"PRICE": "22.00"},
        lambda p: p.fee_details,
    ),
]
DOCUMENT_IDS = ["front_page", "settlement_list", "fee_details"]
STAY = ("YB001234501", "1", "0012345")


# --- institution, hospital, departments -------------------------------------------------------


async def test_registration_hospital_info_and_department_matching(rig: Rig) -> None:
    adapter = rig.engine.adapters[drg.ADAPTER]
    refused = await rig.submit(drg.HOSPITAL, "H1", {"HOSPITALS": [{"HOS_ID": "H1"}]})
    assert refused.status == REJECTED  # nothing before the registration
    assert "ORG_CODE" in refused.error
    registration = await rig.submit(drg.ORG_REGIST, ORG_CODE, {"ORG_NAME": "绍兴市某人民医院"})
    assert registration.status == ACCEPTED
    assert registration.external_id.startswith("SX-ORG-")
    hospitals = [
        {"HOS_ID": "330602001", "HOS_NAME": "绍兴市某人民医院"},
        {"HOS_ID": "330602001-02", "HOS_NAME": "绍兴市某人民医院镜湖院区"},
    ]
    batch = await rig.submit(drg.HOSPITAL, "330602001", {"HOSPITALS": hospitals})
    assert batch.status == ACCEPTED
    renamed = [{**hospitals[0], "HOS_NAME": "绍兴市某人民医院(总院)"}]
    modified = await rig.submit(drg.HOSPITAL_MODIFY, "330602001", {"HOSPITALS": renamed})
    assert modified.status == ACCEPTED
    assert rig.platform.hospitals["330602001"]["HOS_NAME"] == "绍兴市某人民医院(总院)"

    standard = await query(adapter, drg.STAND_DEPARTMENT, {})
    codes = {row["S_DEPARTMENT_CODE"]: row["S_DEPARTMENT_NAME"] for row in standard}
    assert codes["A03.01"] == "呼吸内科专业"
    match = {"HOS_DEPT_CODE": "0301", "HOS_DEPT_NAME": "呼吸与危重症医学科"}
    matched = await rig.submit(
        drg.DEPARTMENT_MATCH, "0301", {"DEPT_MATCHS": [{**match, "S_DEPARTMENT_CODE": "A03.01"}]}
    )
    assert matched.status == ACCEPTED
    unknown = await rig.submit(
        drg.DEPARTMENT_MATCH, "0302", {"DEPT_MATCHS": [{**match, "S_DEPARTMENT_CODE": "Z99"}]}
    )
    assert unknown.status == REJECTED
    assert "DEPT_MATCHS[0].S_DEPARTMENT_CODE" in unknown.error


# --- the three inpatient documents ---------------------------------------------------------------


@pytest.mark.parametrize("document", DOCUMENTS, ids=DOCUMENT_IDS)
async def test_send_and_the_same_content_is_not_sent_again(
    registered: Rig, document: Document
) -> None:
    key = business_key("0012345", 1)
    first = await registered.submit(document.upload, key, document.build())
    assert first.status == ACCEPTED
    assert first.external_id.startswith("SX-")
    assert f"APP_ID={APP_ID}" in first.attempts[0].request
    again = await registered.submit(document.upload, key, document.build())
    assert again.id == first.id
    assert registered.platform.accepted[document.upload] == 1


@pytest.mark.parametrize("document", DOCUMENTS, ids=DOCUMENT_IDS)
async def test_a_503_is_resent_after_the_backoff(registered: Rig, document: Document) -> None:
    registered.faults.unavailable = 1
    failed = await registered.submit(document.upload, "0012345-1", document.build())
    assert failed.status == FAILED
    assert failed.next_attempt_at is not None
    assert await registered.engine.run_due() == 0  # not due yet
    registered.clock.now = failed.next_attempt_at
    assert await registered.engine.run_due() == 1
    done = await registered.engine.ledger.get(failed.id)
    assert done.status == ACCEPTED
    assert [a.outcome for a in done.attempts] == ["failed", "accepted"]


async def test_a_dropped_connection_is_a_failure_resent_later(registered: Rig) -> None:
    registered.faults.dropped = 1
    failed = await registered.submit(drg.FRONT_PAGE, "0012345-1", front_page())
    assert failed.status == FAILED
    assert "ServerDisconnectedError" in failed.error
    assert registered.platform.front_pages == {}
    registered.clock.now += timedelta(minutes=1)
    await registered.engine.run_due()
    assert (await registered.engine.ledger.get(failed.id)).status == ACCEPTED


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (front_page(BAH=""), "BAH"),
        (front_page(XB=None), "XB"),
        (front_page(JBDM=""), "JBDM"),
        (front_page(LYFS="2"), "YZZY_YLJG"),  # 医嘱转院: 拟接收医疗机构 required
        (front_page(CYSJ="2026/11/26"), "CYSJ"),
    ],
    ids=["BAH", "XB", "JBDM", "YZZY_YLJG", "CYSJ"],
)
async def test_a_rejection_names_the_field_and_waits_for_a_person(
    registered: Rig, payload: Json, field: str
) -> None:
    refused = await registered.submit(drg.FRONT_PAGE, "0012345-1", payload)
    assert refused.status == REJECTED
    assert refused.error.startswith("300 ")
    assert field in refused.error
    registered.clock.now += timedelta(days=1)
    assert await registered.engine.run_due() == 0  # never resent by itself
    fixed = await registered.submit(drg.FRONT_PAGE, "0012345-1", front_page())
    assert fixed.status == ACCEPTED


@pytest.mark.parametrize("document", DOCUMENTS, ids=DOCUMENT_IDS)
async def test_corrected_content_is_reversed_then_uploaded_again(
    registered: Rig, document: Document
) -> None:
    key, ledger = "0012345-1", registered.engine.ledger
    first = await registered.submit(document.upload, key, document.build())
    corrected = await registered.submit(document.upload, key, document.build(**document.correction))
    assert corrected.status == ACCEPTED
    assert corrected.replaces == first.id
    assert (await ledger.get(first.id)).status == CANCELLED
    reversal = await ledger.latest(drg.ADAPTER, document.reversal, key, kind="cancel")
    assert reversal is not None
    assert reversal.status == ACCEPTED
    assert reversal.cancels == first.id
    assert "YBLSH=YB001234501" in reversal.attempts[0].request
    assert registered.platform.accepted[document.reversal] == 1
    assert registered.platform.accepted[document.upload] == 2
    stored = document.stored(registered.platform)[STAY]
    field, value = next(iter(document.correction.items()))
    assert value in str(stored)  # the platform holds the corrected version
    assert field in str(stored)


async def test_the_reupload_waits_while_the_reversal_fails(registered: Rig) -> None:
    ledger = registered.engine.ledger
    await registered.submit(drg.FRONT_PAGE, "0012345-1", front_page())
    registered.faults.unavailable = 1
    waiting = await registered.submit(drg.FRONT_PAGE, "0012345-1", front_page(JBDM="J15.900"))
    assert waiting.status == PENDING  # held back: the first is still on the platform
    registered.clock.now += timedelta(minutes=1)
    await registered.engine.run_due()
    assert (await ledger.get(waiting.id)).status == ACCEPTED
    assert registered.platform.front_pages[STAY]["JBDM"] == "J15.900"


async def test_the_platform_refuses_a_second_upload_and_an_unknown_reversal(
    registered: Rig,
) -> None:
    adapter = registered.engine.adapters[drg.ADAPTER]

    async def send(interface: str, payload: Json) -> ReceiverAnswer:
        """Straight to the platform, past the ledger that would prevent these mistakes."""
        target = adapter.interface(interface)
        return target.classify(await adapter.transport.send(target.request(payload)))

    stay = dict(zip(("YBLSH", "ZYCS", "BAH"), STAY, strict=True))
    nothing = await send(drg.FRONT_PAGE_REVERSAL, stay)
    assert nothing.outcome is Reception.REJECTED
    assert "未找到" in nothing.detail
    first = await send(drg.FRONT_PAGE, front_page())
    second = await send(drg.FRONT_PAGE, front_page())
    assert first.outcome is Reception.ACCEPTED
    assert second.outcome is Reception.REJECTED
    assert "冲销" in second.detail


async def test_an_outage_delivers_everything_exactly_once(registered: Rig) -> None:
    registered.faults.unavailable = 10_000  # down until the tests says otherwise
    stays = [f"00200{n:02d}" for n in range(12)]
    for bah in stays:
        submitted = await registered.submit(drg.FRONT_PAGE, business_key(bah, 1), front_page(bah))
        assert submitted.status == FAILED
    for _ in range(3):  # still down: each is tried again once its backoff has passed
        registered.clock.now += timedelta(minutes=2)
        await registered.engine.run_due()
    registered.faults.unavailable = 0
    registered.clock.now += timedelta(minutes=2)
    await registered.engine.run_due()
    uploaded = [key[2] for interface, key in registered.platform.uploads]
    assert sorted(uploaded) == stays  # every one, once
    for bah in stays:
        latest = await registered.engine.ledger.latest(
            drg.ADAPTER, drg.FRONT_PAGE, business_key(bah, 1)
        )
        assert latest is not None
        assert latest.status == ACCEPTED


async def test_a_wrong_app_id_is_rejected(registered: Rig) -> None:
    wrong = build_adapter(
        DrgConfig(base_url=registered.url, app_id="WRONG", org_code=ORG_CODE, timeout_s=5)
    )
    engine = Courier(registered.engine.ledger, {drg.ADAPTER: wrong}, clock=registered.clock)
    refused = await engine.submit(drg.ADAPTER, drg.FRONT_PAGE, "0012345-1", front_page())
    await wrong.transport.close()
    assert refused.status == REJECTED
    assert refused.error.startswith("101 APP_ID")
    assert registered.platform.front_pages == {}


async def test_quality_feedback_and_group_results_cover_the_uploads(registered: Rig) -> None:
    adapter = registered.engine.adapters[drg.ADAPTER]
    await registered.submit(drg.FRONT_PAGE, "0012345-1", front_page())
    operated = front_page("0012346", SSJCZBM1="33.2400", SSJCZRQ1="2026-11-21")
    await registered.submit(drg.FRONT_PAGE, "0012346-1", operated)
    window = {"START_DATE": "2026-11-01 00:00:00", "END_DATE": "2026-11-30 23:59:59"}
    groups = await query(adapter, drg.GROUP_RESULT, window)
    assert {(row["BAH"], row["IN_DRG"], row["DRG_CODE"]) for row in groups} == {
        ("0012345", 1, "ES18"),
        ("0012346", 1, "EB18"),
    }
    feedback = await query(adapter, drg.QUALITY_FEEDBACK, window)
    assert {row["ZK_FIELD"] for row in feedback} == {"JBDM"}  # J18.900 is 未特指
    assert await query(adapter, drg.GROUP_RESULT, {"START_DATE": "2026-12-01 00:00:00"}) == []


async def test_a_forced_rejection_is_final_and_names_its_memo(registered: Rig) -> None:
    registered.faults.rejections = 1
    registered.faults.rejection_memo = "ZFY"
    refused = await registered.submit(drg.SETTLEMENT_LIST, "0012345-1", settlement_list())
    assert refused.status == REJECTED
    assert refused.error == "300 ZFY: 模拟的业务拒绝"
    assert registered.faults.rejections == 0


async def test_faults_are_switched_through_the_admin_endpoint(rig: Rig) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{rig.url}/_faults", json={"unavailable": 2, "latency_s": 0.01}) as answer,
    ):
        assert answer.status == 200
    assert rig.faults.unavailable == 2
    assert rig.faults.latency_s == pytest.approx(0.01)
    transport = HttpTransport(rig.url, timeout_s=5)
    request = rig.engine.adapters[drg.ADAPTER].interface(drg.ORG_REGIST).request({})
    assert (await transport.send(request)).status == 503
    await transport.close()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{rig.url}/_faults", json={"meltdown": True}) as answer,
    ):
        assert answer.status == 400  # an unknown fault is refused, not ignored


# --- the classifier and the field rules on their own ----------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome", "detail"),
    [
        (200, b'{"CODE":200,"MESSAGE":"ok","DATA":{"ID":"R7"}}', Reception.ACCEPTED, ""),
        (200, b'{"CODE":"200","DATA":{"ROWS":[]}}', Reception.ACCEPTED, ""),
        (
            200,
            '{"CODE":300,"FAILDATA":{"MEMO":"XB","MSG":"性别不能为空"}}'.encode(),
            Reception.REJECTED,
            "300 XB: 性别不能为空",
        ),
        (
            200,
            b'{"CODE":101,"FAILDATA":[{"MEMO":"APP_ID","MSG":"bad"}]}',
            Reception.REJECTED,
            "101 APP_ID: bad",
        ),
        (200, b'{"CODE":555,"MESSAGE":"odd"}', Reception.REJECTED, "unknown CODE 555: odd"),
        (503, b"Service Unavailable", Reception.FAILED, "HTTP 503"),
        (200, b"<html>gateway</html>", Reception.FAILED, "unreadable answer: <html>gateway</html>"),
        (200, b"[]", Reception.FAILED, "unreadable answer: []"),
        (404, b"not found", Reception.REJECTED, "HTTP 404: not found"),
    ],
)
def test_classifier(status: int, body: bytes, outcome: Reception, detail: str) -> None:
    answer = classify(Response(status, body))
    assert answer.outcome is outcome
    assert answer.detail == detail


def test_the_platform_record_id_becomes_the_external_id() -> None:
    answer = classify(Response(200, b'{"CODE":200,"DATA":{"ID":"SX-BA-000001"}}'))
    assert answer.external_id == "SX-BA-000001"


def test_reversal_payloads_come_from_the_upload() -> None:
    assert drg.front_page_reversal(front_page(), "") == {
        "YBLSH": "YB001234501",
        "ZYCS": 1,
        "BAH": "0012345",
    }
    assert drg.fee_details_reversal(fee_details(), "")["JZLSH"] == "ZY001234501"
    assert "DETAILS" not in drg.fee_details_reversal(fee_details(), "")


def test_paths_follow_the_prefix_and_can_be_overridden() -> None:
    config = DrgConfig(
        base_url="http://drg.example",
        app_id=APP_ID,
        org_code=ORG_CODE,
        paths={drg.FEE_DETAILS: "/detailUpload/details/v1"},
    )
    interfaces = drg.build_interfaces(config)
    assert len(interfaces) == 15
    assert interfaces[drg.FRONT_PAGE].path == "/drgPms/nologin/drgUpload/baInfo/v1"
    assert interfaces[drg.FEE_DETAILS].path == "/detailUpload/details/v1"
    assert interfaces[drg.FRONT_PAGE].cancel == drg.FRONT_PAGE_REVERSAL


@pytest.mark.parametrize(
    ("changes", "memo"),
    [
        ({}, None),
        ({"XB": "0"}, "XB"),
        ({"LYFS": "6"}, "LYFS"),
        ({"LYFS": "3"}, "WSY_YLJG"),
        ({"LYFS": "2", "YZZY_YLJG": "浙江大学医学院附属第一医院"}, None),
        ({"JBDM": "J189"}, "JBDM"),
        ({"JBDM": "J18.9"}, None),
        ({"JBDM1": "i10"}, "JBDM1"),
        ({"SSJCZBM1": "33.2400"}, None),
        ({"SSJCZBM1": "33-24"}, "SSJCZBM1"),
        ({"CSRQ": "1956-02-30"}, "CSRQ"),
        ({"RYSJ": "2026-11-20"}, None),
        ({"CYSJ": "2026-11-19 10:00:00"}, "CYSJ"),  # before the admission
        ({"ZYCS": 0}, "ZYCS"),
        ({"YBLSH": " "}, "YBLSH"),
    ],
)
def test_front_page_rules(changes: Json, memo: str | None) -> None:
    failures = check_front_page(main_data(**changes))
    assert [f.memo for f in failures] == ([memo] if memo else [])


def test_fee_detail_rules_name_the_row() -> None:
    document = fee_details(PRICE="-1")
    failures = check_fee_details(document, document["DETAILS"])
    assert [f.memo for f in failures] == ["DETAILS[0].PRICE"]
    assert [f.memo for f in check_fee_details(document, [])] == ["DETAILS"]
