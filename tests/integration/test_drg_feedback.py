"""What the DRG platform answers back: the standard departments (asked at most once a day)
filling the department matching table, and the quality-control feedback and grouping results
of a day's discharges, recorded in the ledger. Against the simulator over real HTTP."""

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from adapters.drg import interfaces as drg
from adapters.drg.config import DrgConfig
from adapters.drg.feedback import StandardDepartments, ask_feedback, match_departments
from adapters.drg.interfaces import build_adapter, business_key
from adapters.drg.simulator import PLATFORM, create_app
from adapters.framework.delivery import Adapter, Courier
from store.ledger import ACCEPTED
from store.sqlite import SqliteStore
from tests.integration.test_drg_contract import front_page


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[Courier, Adapter, object]]:
    app = create_app(app_id="A1", org_code="O1")
    server = TestServer(app)
    await server.start_server()
    config = DrgConfig(base_url=str(server.make_url("")).rstrip("/"), app_id="A1", org_code="O1")
    adapter = build_adapter(config)
    store = SqliteStore(tmp_path / "jianhu.sqlite3")
    await store.open()
    delivery = Courier(store.ledger, {"drg": adapter})
    assert (await delivery.submit("drg", drg.ORG_REGIST, "O1", {"ORG_NAME": "某院"})).status == (
        ACCEPTED
    )
    yield delivery, adapter, app[PLATFORM]
    await adapter.transport.close()
    await store.close()
    await server.close()


async def test_standard_departments_are_cached_and_fill_the_matching(
    platform: tuple[Courier, Adapter, object],
) -> None:
    delivery, adapter, _ = platform
    now = [0.0]
    asked: list[int] = []
    departments = StandardDepartments(adapter, ttl_s=3600, clock=lambda: now[0])
    original = adapter.transport.send

    async def counting(request):  # type: ignore[no-untyped-def]
        asked.append(1)
        return await original(request)

    adapter.transport.send = counting  # type: ignore[method-assign]
    standard = await departments.get()
    await departments.get()
    assert len(asked) == 1  # the second answer came from the cache
    now[0] = 7200.0
    await departments.get()
    assert len(asked) == 2  # stale after its time to live

    local = {"0301": "呼吸内科", "0501": "普通外科", "9901": "院办"}
    matching = match_departments(local, standard, configured={"0501": "A04.01"})
    by_code = {row["HOS_DEPT_CODE"]: row["S_DEPARTMENT_CODE"] for row in matching.rows}
    assert by_code["0301"] == next(c for c, n in standard.items() if n == "呼吸内科专业")
    assert by_code["0501"] == "A04.01"  # what someone configured wins
    assert matching.unmatched == ["9901"]  # no standard department: a person decides
    adapter.transport.send = original  # type: ignore[method-assign]
    submitted = await delivery.submit(
        "drg", drg.DEPARTMENT_MATCH, "all", {"DEPT_MATCHS": matching.rows}
    )
    assert submitted.status == ACCEPTED


async def test_feedback_of_a_day_is_recorded_in_the_ledger(
    platform: tuple[Courier, Adapter, object],
) -> None:
    delivery, _, _ = platform
    page = front_page("0099001", 1)
    uploaded = await delivery.submit("drg", drg.FRONT_PAGE, business_key("0099001", 1), page)
    assert uploaded.status == ACCEPTED
    discharged = date.fromisoformat(page["MAIN_DATA"]["CYSJ"][:10])
    answers = await ask_feedback(delivery, discharged)
    assert [a.interface for a in answers] == [drg.QUALITY_FEEDBACK, drg.GROUP_RESULT]
    assert all(a.status == ACCEPTED for a in answers)
    grouping = answers[1].attempts[0].response
    assert "0099001" in grouping  # the stay's grouping result, kept with the submission
    assert "IN_DRG" in grouping
    again = await ask_feedback(delivery, discharged)
    assert [a.id for a in again] == [a.id for a in answers]  # one question per day
