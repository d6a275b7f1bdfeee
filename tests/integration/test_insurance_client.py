"""Synchronous insurance calls over a real socket: each recorded in the ledger before it is
sent, the day's sign number used and renewed when the platform says it expired, a refusal
returned with its reason, and a lost answer reported as an unknown outcome, never as a success
or a failure."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.insurance.client import (
    InsuranceClient,
    InsurancePlatform,
    OutcomeUnknownError,
)
from adapters.insurance.envelope import Institution, Operator
from store.ledger import ACCEPTED, FAILED, REJECTED, LedgerQuery
from store.sqlite import SqliteStore

INSTITUTION = Institution(
    fixmedins_code="H33060200001", fixmedins_name="绍兴市某人民医院", mdtrtarea_admvs="330602"
)
COUNTER = Operator(opter="0101", opter_name="收费员甲")


class Platform:
    """Just enough of a platform for the client: sign-in, a person lookup, a slow settlement."""

    def __init__(self) -> None:
        self.signed = 0
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        assert len(body["msgid"]) == 30
        if body["infno"] == "9001":
            self.signed += 1
            return self.answer(0, {"signinoutb": {"sign_no": f"SN{self.signed}"}})
        if body["sign_no"] != f"SN{self.signed}":
            return self.answer(-1, error="签到流水号无效,请重新签到")
        if body["infno"] == "2207":
            await asyncio.sleep(2)  # longer than the client waits
        if body["infno"] == "2208":
            return web.Response(status=502, text="Bad Gateway")
        if body["input"]["data"]["psn_no"] == "NOBODY":
            return self.answer(-1, error="人员未参保")
        return self.answer(0, {"baseinfo": {"psn_no": body["input"]["data"]["psn_no"]}})

    def answer(
        self, code: int, output: dict[str, Any] | None = None, error: str = ""
    ) -> web.Response:
        body = {
            "infcode": code,
            "inf_refmsgid": "330602202612040930050000000001",
            "err_msg": error,
            "output": output or {},
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[InsuranceClient, Platform, SqliteStore]]:
    platform = Platform()
    app = web.Application()
    app.router.add_post("/fsi/api/callService", platform.handle)
    server = TestServer(app)
    await server.start_server()
    store = SqliteStore(tmp_path / "hub.sqlite3")
    await store.open()
    config = InsurancePlatform(
        base_url=str(server.make_url("")), institution=INSTITUTION, timeout_s=0.5
    )
    client = InsuranceClient("zj", config, store.ledger)
    yield client, platform, store
    await client.close()
    await store.close()
    await server.close()


async def test_a_call_signs_in_once_and_is_recorded(
    setup: tuple[InsuranceClient, Platform, SqliteStore],
) -> None:
    client, platform, store = setup
    first = await client.call("1101", {"data": {"psn_no": "P1"}}, COUNTER)
    second = await client.call("1101", {"data": {"psn_no": "P2"}}, COUNTER)
    assert first.answer.succeeded
    assert second.answer.output == {"baseinfo": {"psn_no": "P2"}}
    assert platform.signed == 1
    assert first.msgid != second.msgid
    record = await store.ledger.get(first.call_id)
    assert (record.kind, record.interface, record.business_key) == ("call", "zj/1101", first.msgid)
    assert record.status == ACCEPTED
    assert record.external_id == "330602202612040930050000000001"
    assert orjson.loads(record.attempts[0].request)["sign_no"] == "SN1"


async def test_a_refusal_comes_back_with_its_reason(
    setup: tuple[InsuranceClient, Platform, SqliteStore],
) -> None:
    client, _, store = setup
    refused = await client.call("1101", {"data": {"psn_no": "NOBODY"}}, COUNTER)
    assert not refused.answer.succeeded
    assert refused.answer.error == "人员未参保"
    assert (await store.ledger.get(refused.call_id)).status == REJECTED


async def test_an_expired_sign_number_signs_in_again(
    setup: tuple[InsuranceClient, Platform, SqliteStore],
) -> None:
    client, platform, _ = setup
    await client.call("1101", {"data": {"psn_no": "P1"}}, COUNTER)
    platform.signed += 1  # the platform dropped the day's sign-in (SN1 no longer valid)
    again = await client.call("1101", {"data": {"psn_no": "P1"}}, COUNTER)
    assert again.answer.succeeded
    assert platform.received[-1]["sign_no"] == "SN3"  # signed in anew, then sent again


@pytest.mark.parametrize("infno", ["2207", "2208"])
async def test_a_lost_answer_is_an_unknown_outcome(
    setup: tuple[InsuranceClient, Platform, SqliteStore], infno: str
) -> None:
    client, _, store = setup
    with pytest.raises(OutcomeUnknownError) as unknown:
        await client.call(infno, {"data": {"psn_no": "P1"}}, COUNTER)
    record = await store.ledger.get(unknown.value.call_id)
    assert record.business_key == unknown.value.msgid
    assert record.status == FAILED
    assert record.error.startswith("outcome unknown")
    assert record.next_attempt_at is None  # never resent by the ledger on its own
    calls = await store.ledger.search(LedgerQuery(adapter="insurance", limit=10))
    assert {c.interface for c in calls} == {"zj/9001", f"zj/{infno}"}
