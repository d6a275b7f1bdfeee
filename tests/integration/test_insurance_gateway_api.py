"""The insurance gateway as the HIS calls it: ``POST /insurance/{platform}/{infno}`` through
the running hub, to platforms on real sockets: the answer unchanged with the hub's call id, the
platform chosen by the person's insured area (a cross-province visit to the national platform,
flagged), a lost answer a 504 naming the msgid, and the usual refusals."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.insurance.envelope import Json
from hub.web.keys import RUNTIME
from store.ledger import FAILED
from tests.integration.fhir_api import Client, start_api
from tests.integration.test_insurance_client import Platform

HIS = {"Authorization": "Bearer his-key"}
OPS = {"Authorization": "Bearer ops-key"}
COUNTER = {"opter": "0101", "opter_name": "收费员甲"}


@dataclass
class Setup:
    api: Client
    zhejiang: Platform
    national: Platform


async def platform_server(platform: Platform) -> TestServer:
    app = web.Application()
    app.router.add_post("/fsi/api/callService", platform.handle)
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    zhejiang, national = Platform(), Platform()
    servers = [await platform_server(zhejiang), await platform_server(national)]

    def platform(server: TestServer, area: str) -> Json:
        return {
            "base_url": str(server.make_url("")),
            "timeout_s": 0.5,
            "institution": {
                "fixmedins_code": "H33060200001",
                "fixmedins_name": "绍兴市某人民医院",
                "mdtrtarea_admvs": area,
            },
        }

    config = {
        "platforms": {"zj": platform(servers[0], "330602"), "gj": platform(servers[1], "330602")},
        "local": "zj",
        "cross_province": "gj",
    }
    api = await start_api(tmp_path, insurance=config)
    yield Setup(api, zhejiang, national)
    await api.close()
    for server in servers:
        await server.close()


async def test_the_his_gets_the_platforms_answer_and_the_call_id(setup: Setup) -> None:
    body = {"input": {"data": {"psn_no": "P1"}}, "operator": COUNTER, "insuplc_admdvs": "330602"}
    answered = await setup.api.post("/insurance/auto/1101", json=body, headers=HIS)
    assert answered.status == 200
    shown = await answered.json()
    assert (shown["platform"], shown["scope"]) == ("zj", "local")
    assert shown["answer"]["output"] == {"baseinfo": {"psn_no": "P1"}}
    assert shown["answer"]["infcode"] == 0
    record = await setup.api.app[RUNTIME].store.ledger.get(shown["call_id"])
    assert record.business_key == shown["msgid"]


async def test_a_cross_province_visit_goes_to_the_national_platform_flagged(
    setup: Setup,
) -> None:
    body = {"input": {"data": {"psn_no": "P9"}}, "operator": COUNTER, "insuplc_admdvs": "110105"}
    shown = await (await setup.api.post("/insurance/auto/1101", json=body, headers=HIS)).json()
    assert (shown["platform"], shown["scope"]) == ("gj", "cross-province")
    sent = setup.national.received[-1]
    assert sent["insuplc_admdvs"] == "110105"
    assert sent["input"]["data"]["out_setl_flag"] == "1"
    assert setup.zhejiang.received == []
    in_province = {**body, "insuplc_admdvs": "330100"}
    shown = await (
        await setup.api.post("/insurance/auto/1101", json=in_province, headers=HIS)
    ).json()
    assert (shown["platform"], shown["scope"]) == ("zj", "in-province")


async def test_a_lost_answer_is_a_504_naming_the_msgid(setup: Setup) -> None:
    body = {"input": {"data": {"psn_no": "P1"}}, "operator": COUNTER}
    answered = await setup.api.post("/insurance/zj/2207", json=body, headers=HIS)
    assert answered.status == 504
    shown = await answered.json()
    record = await setup.api.app[RUNTIME].store.ledger.get(shown["call_id"])
    assert (record.status, record.business_key) == (FAILED, shown["msgid"])


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/insurance/nowhere/1101", {"input": {}, "operator": COUNTER}, HIS, 404),
        ("/insurance/zj/1101", {"operator": COUNTER}, HIS, 400),
        ("/insurance/zj/1101", {"input": {}, "operator": {"opter": ""}}, HIS, 400),
        ("/insurance/zj/1101", {"input": {}, "operator": COUNTER}, OPS, 403),
        ("/insurance/zj/1101", {"input": {}, "operator": COUNTER}, {}, 401),
    ],
)
async def test_what_the_gateway_refuses(
    setup: Setup, path: str, body: Json, headers: dict[str, str], status: int
) -> None:
    answered = await setup.api.post(path, json=body, headers=headers)
    assert answered.status == status
    assert setup.zhejiang.received == []


async def test_without_platforms_the_gateway_says_so(tmp_path: Path) -> None:
    api = await start_api(tmp_path)
    try:
        body = {"input": {}, "operator": COUNTER}
        answered = await api.post("/insurance/zj/1101", json=body, headers=HIS)
        assert answered.status == 503
    finally:
        await api.close()
