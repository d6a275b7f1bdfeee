"""The outpatient insurance flow through the hub's gateway against the strict simulator on a
real socket: read the person, register, upload fees, pre-settle, settle, cancel; what the
platform refuses (out of order, twice, a cross-province card without its card_sn); and a
settlement whose answer is lost after the platform settled, reversed at once (2601) so that
settling again never settles twice."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from adapters.framework.simulated import FAULTS
from adapters.insurance.simulator import PLATFORM, NationalPlatform, create_app
from hub.web.keys import RUNTIME
from tests.integration.fhir_api import Client, start_api

HIS = {"Authorization": "Bearer his-key"}
COUNTER = {"opter": "0101", "opter_name": "收费员甲"}
LOCAL_ID, CROSS_ID = "330602199001010011", "110105197803030033"


@dataclass
class Setup:
    api: Client
    server: TestServer

    @property
    def platform(self) -> NationalPlatform:
        return self.server.app[PLATFORM]

    async def call(self, infno: str, input_: dict[str, Any], area: str = "") -> tuple[int, Any]:
        body = {"input": input_, "operator": COUNTER, "insuplc_admdvs": area}
        answered = await self.api.post(f"/insurance/auto/{infno}", json=body, headers=HIS)
        return answered.status, await answered.json()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    server = TestServer(create_app())
    await server.start_server()
    platform = {
        "base_url": str(server.make_url("")),
        "timeout_s": 1.0,
        "institution": {
            "fixmedins_code": "H33060200001",
            "fixmedins_name": "绍兴市某人民医院",
            "mdtrtarea_admvs": "330602",
        },
    }
    config = {"platforms": {"zj": platform, "gj": platform}, "local": "zj", "cross_province": "gj"}
    api = await start_api(tmp_path, insurance=config)
    yield Setup(api, server)
    await api.close()
    await server.close()


async def person(setup: Setup, certno: str, **card: str) -> tuple[str, str]:
    kind = "03" if card else "02"
    status, shown = await setup.call(
        "1101", {"data": {"mdtrt_cert_type": kind, "mdtrt_cert_no": certno, **card}}
    )
    assert status == 200, shown
    output = shown["answer"]["output"]
    return output["baseinfo"]["psn_no"], output["insuinfo"][0]["insuplc_admdvs"]


async def registered_with_fees(setup: Setup, psn_no: str, area: str) -> str:
    status, shown = await setup.call(
        "2201", {"data": {"psn_no": psn_no, "insutype": "310", "ipt_otp_no": "MZ0001"}}, area
    )
    assert status == 200, shown
    assert shown["answer"]["infcode"] == 0, shown
    mdtrt_id = shown["answer"]["output"]["data"]["mdtrt_id"]
    fee = {
        "feedetl_sn": "1",
        "mdtrt_id": mdtrt_id,
        "psn_no": psn_no,
        "chrg_bchno": "B1",
        "det_item_fee_sumamt": 100.0,
    }
    _, shown = await setup.call("2204", {"feedetail": [fee]}, area)
    assert shown["answer"]["infcode"] == 0, shown
    return str(mdtrt_id)


def settle_input(psn_no: str, mdtrt_id: str) -> dict[str, Any]:
    return {
        "data": {
            "psn_no": psn_no,
            "mdtrt_id": mdtrt_id,
            "chrg_bchno": "B1",
            "medfee_sumamt": 100.0,
            "insutype": "310",
            "mdtrt_cert_type": "02",
        }
    }


async def test_an_outpatient_visit_is_registered_settled_and_cancelled(setup: Setup) -> None:
    psn_no, area = await person(setup, LOCAL_ID)
    mdtrt_id = await registered_with_fees(setup, psn_no, area)
    _, pre = await setup.call("2206", settle_input(psn_no, mdtrt_id), area)
    assert pre["answer"]["output"]["setlinfo"]["fund_pay_sumamt"] == 70.0
    _, settled = await setup.call("2207", settle_input(psn_no, mdtrt_id), area)
    setlinfo = settled["answer"]["output"]["setlinfo"]
    assert setlinfo["medins_setl_id"] == settled["msgid"]  # the platform echoes our msgid
    _, twice = await setup.call("2207", settle_input(psn_no, mdtrt_id), area)
    assert twice["answer"]["err_msg"] == "该就诊已结算"  # no second settlement
    cancel = {"data": {"setl_id": setlinfo["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}}
    _, cancelled = await setup.call("2208", cancel, area)
    assert cancelled["answer"]["infcode"] == 0
    assert setup.platform.settlements[setlinfo["setl_id"]]["cancelled"]


async def test_fees_without_a_registration_are_refused(setup: Setup) -> None:
    psn_no, area = await person(setup, LOCAL_ID)
    fee = {"feedetl_sn": "1", "mdtrt_id": "MD-NONE", "psn_no": psn_no, "det_item_fee_sumamt": 1.0}
    _, shown = await setup.call("2204", {"feedetail": [fee]}, area)
    assert shown["answer"]["err_msg"] == "就诊记录不存在,请先挂号"


async def test_a_cross_province_card_needs_its_card_sn_and_goes_flagged(setup: Setup) -> None:
    _, shown = await setup.call(
        "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": CROSS_ID}}
    )
    assert "card_sn" in shown["answer"]["err_msg"]
    psn_no, area = await person(setup, CROSS_ID, card_sn="CSN0003")
    assert area == "110105"
    mdtrt_id = await registered_with_fees(setup, psn_no, area)  # flagged by the gateway
    _, settled = await setup.call("2207", settle_input(psn_no, mdtrt_id), area)
    assert settled["scope"] == "cross-province"
    assert settled["answer"]["infcode"] == 0, settled


async def test_a_settlement_whose_answer_is_lost_is_reversed_and_settles_once(
    setup: Setup,
) -> None:
    psn_no, area = await person(setup, LOCAL_ID)
    mdtrt_id = await registered_with_fees(setup, psn_no, area)
    setup.server.app[FAULTS].update({"settled_then_dropped": 1})
    status, lost = await setup.call("2207", settle_input(psn_no, mdtrt_id), area)
    assert status == 504
    assert lost["resolution"] == "reversed"
    assert [s["cancelled"] for s in setup.platform.settlements.values()] == [True]
    _, again = await setup.call("2207", settle_input(psn_no, mdtrt_id), area)
    assert again["answer"]["infcode"] == 0
    standing = [s for s in setup.platform.settlements.values() if not s["cancelled"]]
    assert len(standing) == 1  # settled once, never twice


async def test_a_sign_in_without_an_answer_is_not_the_transactions_outcome(
    setup: Setup,
) -> None:
    setup.server.app[FAULTS].update({"unavailable": 1})  # the first call is the 9001
    status, shown = await setup.call("2207", settle_input("33060200000001", "MD-X"), "330602")
    assert status == 503  # not sent: nothing to reverse
    assert "sign-in" in shown["issue"][0]["diagnostics"]
    assert setup.platform.msgids == {}


async def test_too_deep_an_input_is_refused_not_a_500(setup: Setup) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(600):
        node["x"] = {}
        node = node["x"]
    status, _ = await setup.call("1101", {"data": deep})
    assert status == 400


async def test_the_ledger_does_not_retry_or_cancel_a_call(setup: Setup) -> None:
    psn_no, area = await person(setup, LOCAL_ID)
    mdtrt_id = await registered_with_fees(setup, psn_no, area)
    _, settled = await setup.call("2207", settle_input(psn_no, mdtrt_id), area)
    ops = {"Authorization": "Bearer ops-key"}
    for action in ("retry", "cancel"):
        answered = await setup.api.post(f"/ops/ledger/{settled['call_id']}/{action}", headers=ops)
        assert answered.status == 409
    record = await setup.api.app[RUNTIME].store.ledger.get(settled["call_id"])
    assert record.status == "accepted"
