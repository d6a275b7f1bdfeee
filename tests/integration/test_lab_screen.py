"""The lab big screen end to end: the hub on real sockets, Debian's Chromium driven by
Playwright, HL7 over MLLP. A critical potassium shows on the wall within 2 seconds of the send
and an acknowledgement through the API clears it; overdue tubes sit in their stage's column.
A lab worker at the wall acknowledges in the page itself (the 确认 dialog, with a token) and
sees why when the hub refuses. The API half checks the tokens, the acknowledgements and what
they leave in the store."""

import asyncio
import importlib.util
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.bus.settings import BusSettings
from hub.hl7v2.client import ACCEPTED, MllpClient
from hub.lab.service import LabService
from hub.lab.settings import LabSettings
from hub.web.keys import RUNTIME
from store.resources import AuditFilter
from tests.integration.fhir_api import AUTH, Client, settle, start_api
from tests.integration.test_bus_contract import wait_until

CHROMIUM = Path("/usr/bin/chromium")
ON_CI = os.environ.get("CI", "").lower() == "true"
if not ON_CI and (not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None):
    pytest.skip(
        "no /usr/bin/chromium or no playwright here (scripts/browser.sh installs the browser); "
        "on CI this is a failure",
        allow_module_level=True,
    )

from playwright.async_api import Locator, Page, async_playwright, expect  # noqa: E402

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
CRITICAL_K = "31-lis-oru-r01-critical-k-enhanced.hl7"  # 钾 6.8 mmol/L, 杨丽, 普外科病区 05 床
CHEM_ORDER = "18-emr-oml-o21-chem-order.hl7"  # collected long ago, never received: overdue
FLU_ORDER = "17-his-oml-o21-flu-order.hl7"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WALL = {"Authorization": "Bearer wall-key"}  # role screen
WAIT_MS = 10_000  # generous for a slow 2-core machine: the waits end as soon as the page is ready
READ_BACK = "杨丽 血钾 6.8 mmol/L"
ACK = {
    "by": {"number": "0499", "name": "梁思远"},
    "clinician": {"number": "2107", "name": "王芳"},
    "read_back": READ_BACK,
}


async def hub(tmp_path: Path, open_screen: bool) -> Client:
    return await start_api(
        tmp_path,
        consume=True,
        mllp_port=0,
        http_host="127.0.0.1",
        lab=LabSettings(open_screen=open_screen),
        bus=BusSettings(retry_delays_s=(0.1,), handler_timeout_s=10),
        shutdown_grace_s=2,
    )


@pytest.fixture
async def wall(tmp_path: Path) -> AsyncIterator[Client]:
    api = await hub(tmp_path / "wall", open_screen=True)
    yield api
    await api.close()


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Client]:
    api = await hub(tmp_path / "guarded", open_screen=False)
    yield api
    await api.close()


def corpus(name: str) -> str:
    return (CORPUS / name).read_bytes().decode("utf-8")


async def send(api: Client, *names: str) -> None:
    client = MllpClient("127.0.0.1", api.app[RUNTIME].listeners[0].port, timeout_s=10)
    try:
        for name in names:
            result = await client.send(corpus(name))
            assert result.outcome == ACCEPTED, result
    finally:
        await client.close()


async def overview(api: Client, headers: dict[str, str] | None = None) -> Any:
    response = await api.get("/lab/overview", headers=headers or {})
    assert response.status == 200, await response.text()
    return await response.json()


@asynccontextmanager
async def screen_of(api: Client, live: bool = True) -> AsyncIterator[Page]:
    """The wall page in Chromium; with ``live`` once its snapshot is read and its stream open."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 900})
            await page.goto(str(api.make_url("/lab/screen")))
            if live:
                await page.wait_for_selector("#live.on", timeout=WAIT_MS)
            yield page
        finally:
            await browser.close()


async def test_a_critical_value_over_mllp_flashes_on_the_screen_until_acknowledged(
    wall: Client,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with screen_of(wall) as page:
        assert await page.title() == "检验标本全程监控"

        await send(wall, CHEM_ORDER, FLU_ORDER)
        await page.wait_for_selector(
            '.col[data-column="receive"] .tube:has-text("采集后未签收")', timeout=5_000
        )

        elapsed, card = await critical_on_screen(wall, page)
        print(f"\nMLLP send -> critical value on the screen: {elapsed * 1000:.0f} ms")
        assert elapsed < 2.0
        text = await card.inner_text()
        assert "杨*" in text
        assert "杨丽" not in text
        assert "6.8 mmol/L" in text
        assert "05床" in text
        await page.screenshot(path=str(ARTIFACTS / "lab-screen.png"), full_page=True)

        alert_id = await card.get_attribute("data-id")
        response = await wall.post(f"/lab/critical/{alert_id}/ack", json=ACK, headers=AUTH)
        assert response.status == 200, await response.text()
        assert (await response.json())["state"] == "acknowledged"
        await page.wait_for_selector(
            f'.crit[data-id="{alert_id}"]', state="detached", timeout=2_000
        )
        assert await page.inner_text("#k-critical") == "0"


async def critical_on_screen(api: Client, page: Page) -> tuple[float, Any]:
    """The wait starts before the send, so its 2 s limit counts from the send."""
    selector = '#critical .crit:has-text("钾 6.8 mmol/L")'
    started = time.perf_counter()
    waiting = asyncio.ensure_future(page.wait_for_selector(selector, timeout=2_000))
    await send(api, CRITICAL_K)
    card = await waiting
    return time.perf_counter() - started, card


# --- acknowledged in the page, as a lab worker at the wall does ---

EMR_KEY = AUTH["Authorization"].removeprefix("Bearer ")  # role clinician: may acknowledge
WALL_KEY = WALL["Authorization"].removeprefix("Bearer ")  # role screen: may only look
TUBE_LATE = '.col[data-column="receive"] .tube:has-text("采集后未签收")'


async def critical_card(api: Client, page: Page) -> tuple[str, Locator]:
    """The critical potassium sent over MLLP, and its flashing card (found by its id, so it is
    the same card after every re-render)."""
    await send(api, CRITICAL_K)
    found = page.locator('#critical .crit:has-text("钾 6.8 mmol/L")')
    await expect(found).to_have_count(1, timeout=WAIT_MS)
    alert_id = await found.get_attribute("data-id")
    assert alert_id
    return alert_id, page.locator(f'#critical .crit[data-id="{alert_id}"]')


async def open_dialog(page: Page, holder: Locator) -> Locator:
    """The card's or the tube's 确认 opens the acknowledgement dialog."""
    await holder.get_by_role("button", name="确认").click()
    dialog = page.locator("dialog#ack")
    await expect(dialog).to_be_visible(timeout=WAIT_MS)
    return dialog


async def fill(dialog: Locator, fields: dict[str, str]) -> None:
    for label, text in fields.items():
        await dialog.get_by_label(label, exact=True).fill(text)


def critical_fields(ack: dict[str, Any], token: str) -> dict[str, str]:
    return {
        "检验科工号": ack["by"]["number"],
        "检验科姓名": ack["by"]["name"],
        "临床工号": ack["clinician"]["number"],
        "临床人员姓名": ack["clinician"]["name"],
        "复述内容": ack["read_back"],
        "访问令牌": token,
    }


async def submit(dialog: Locator) -> None:
    await dialog.locator("#ack-ok").click()


async def refused_with(dialog: Locator, message: str) -> None:
    """The dialog is back, open, with the reason in Chinese."""
    await expect(dialog.locator("#error")).to_have_text(f"确认失败：{message}", timeout=WAIT_MS)
    await expect(dialog).to_be_visible()


async def acknowledged_audits(api: Client) -> list[Any]:
    found = await api.app[RUNTIME].resources.audit.search(
        [AuditFilter("subtype", "=", "acknowledged")], 10, None, False
    )
    return [orjson.loads(event.body or b"{}") for event in found.items]


def staff_of(agent: Any) -> tuple[str, str]:
    who = agent["who"]
    return who.get("identifier", {}).get("value", ""), who.get("display", "")


async def test_a_lab_worker_acknowledges_a_critical_value_in_the_page(wall: Client) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with screen_of(wall) as page:
        await page.evaluate("window.sameScreen = true")  # gone if the page were reloaded
        alert_id, card = await critical_card(wall, page)
        dialog = await open_dialog(page, card)
        await expect(dialog.locator("#ack-title")).to_contain_text("危急值确认")
        await fill(dialog, critical_fields(ACK, EMR_KEY))
        await submit(dialog)

        await expect(card).to_have_count(0, timeout=WAIT_MS)
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#k-critical")).to_have_text("0")
        await expect(page.locator("#critical-note")).to_have_text("暂无待确认危急值")
        assert await page.evaluate("window.sameScreen") is True
        await page.screenshot(path=str(ARTIFACTS / "lab-screen-acknowledged.png"), full_page=True)

    assert (await overview(wall))["critical"] == []
    stored = await wall.app[RUNTIME].resources.read("Communication", f"crit-{alert_id}")
    communication = orjson.loads(stored.body or b"{}")
    assert communication["status"] == "completed"
    assert communication["sender"]["display"] == "梁思远"
    assert communication["recipient"][0]["display"] == "王芳"
    assert communication["payload"][1]["contentString"] == f"复述：{READ_BACK}"

    await flushed(wall)
    (audit,) = await acknowledged_audits(wall)
    people = {staff_of(agent) for agent in audit["agent"] if "display" in agent["who"]}
    assert people == {("0499", "梁思远"), ("2107", "王芳")}
    assert "api-key:clinician" in {agent.get("name") for agent in audit["agent"]}
    assert {"reference": f"Communication/crit-{alert_id}"} in [
        entity["what"] for entity in audit["entity"]
    ]


async def test_a_refused_acknowledgement_says_why_and_the_critical_value_stays(
    wall: Client,
) -> None:
    async with screen_of(wall) as page:
        alert_id, card = await critical_card(wall, page)
        dialog = await open_dialog(page, card)
        await fill(dialog, critical_fields(ACK, "no-such-key"))
        await submit(dialog)
        await refused_with(dialog, "访问令牌无效或未填写")
        # what was typed is still there: only the token is retyped
        await expect(dialog.get_by_label("复述内容")).to_have_value(READ_BACK)

        await fill(dialog, {"访问令牌": WALL_KEY})
        await submit(dialog)
        await refused_with(dialog, "此访问令牌无权确认")

        await fill(dialog, {"访问令牌": EMR_KEY, "复述内容": " "})
        await submit(dialog)
        await refused_with(dialog, "请填写双方的工号、姓名和临床人员的复述内容")

        await page.route("**/lab/critical/*/ack", lambda route: route.abort())
        await fill(dialog, {"复述内容": READ_BACK})
        await submit(dialog)
        await refused_with(dialog, "无法连接服务器，请稍后重试")
        await page.unroute("**/lab/critical/*/ack")

        await expect(card).to_be_visible()
        await expect(page.locator("#k-critical")).to_have_text("1")
        (still_open,) = (await overview(wall))["critical"]
        assert still_open["id"] == alert_id

        await dialog.get_by_role("button", name="取消").click()
        await expect(dialog).to_be_hidden()
        await expect(card).to_be_visible()
        assert len((await overview(wall))["critical"]) == 1
    assert await acknowledged_audits(wall) == []


async def test_a_lab_worker_acknowledges_an_overdue_tube_in_the_page(wall: Client) -> None:
    async with screen_of(wall) as page:
        await send(wall, CHEM_ORDER)
        tube = page.locator(TUBE_LATE)
        await expect(tube).to_have_count(1, timeout=WAIT_MS)
        dialog = await open_dialog(page, tube)
        await expect(dialog.locator("#ack-title")).to_contain_text("超时确认")

        await fill(dialog, {"备注": "已联系运送", "访问令牌": EMR_KEY})
        await submit(dialog)
        await refused_with(dialog, "请填写确认人")
        await expect(tube).not_to_have_class("tube acked")

        await fill(dialog, {"确认人": "张护士"})
        await submit(dialog)
        await expect(tube).to_have_class("tube acked", timeout=WAIT_MS)
        await expect(tube).to_contain_text("已确认：张护士")
        await expect(tube.get_by_role("button", name="确认")).to_have_count(0)
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#k-overdue")).to_have_text("0")

    (alert,) = (await overview(wall))["alerts"]
    assert alert["acknowledgement"]["by"] == "张护士"
    assert alert["acknowledgement"]["note"] == "已联系运送"
    assert not alert["cleared"]  # taken in charge, still overdue until the tube is received


async def test_the_screen_needs_a_token_unless_open(guarded: Client, wall: Client) -> None:
    for path in ("/lab/overview", "/lab/stream"):
        assert (await guarded.get(path)).status == 401
    assert (await guarded.get("/lab/overview", headers=WALL)).status == 200
    assert (await wall.get("/lab/overview")).status == 200
    # the page itself holds no data: it loads anywhere and asks for the token
    page = await (await guarded.get("/lab/screen")).text()
    assert 'id="login"' in page
    response = await wall.get("/lab/screen")
    assert "text/html" in response.headers["Content-Type"]
    assert "https://" not in await response.text()  # nothing from a CDN
    # the wall may look but never acknowledge, even when the screen is open
    assert (await wall.post("/lab/critical/x/ack", json=ACK)).status == 401
    assert (await wall.post("/lab/critical/x/ack", json=ACK, headers=WALL)).status == 403
    assert (await wall.post("/lab/critical/x/ack", json=ACK, headers=AUTH)).status == 404


def lab_of(api: Client) -> LabService:
    service: LabService | None = api.app[RUNTIME].lab
    assert service is not None
    return service


async def test_the_stream_sends_changes_and_lets_go_of_a_closed_screen(
    wall: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hub.web.lab.HEARTBEAT_S", 0.2)  # a closed screen is seen sooner
    service = lab_of(wall)
    response = await wall.get("/lab/stream")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    async with asyncio.timeout(5):  # the stream says so once the screen is subscribed
        while await response.content.readline() != b": connected\n":
            pass
    assert service.screens == 1
    await send(wall, CRITICAL_K)
    event = await next_event(response, "critical")
    assert event["step"] == "raised"
    assert event["alert"]["patient"] == "杨*"
    response.close()
    await wait_until(lambda: service.screens == 0, timeout_s=5)  # by the next heartbeat


async def next_event(response: Any, kind: str) -> Any:
    async with asyncio.timeout(5):
        async for line in response.content:
            if line.startswith(b"data: "):
                event = orjson.loads(line[6:])
                if event["type"] == kind:
                    return event
    raise AssertionError(f"no {kind} event")


async def test_acknowledgements_are_named_and_audited(wall: Client) -> None:
    runtime, service = wall.app[RUNTIME], lab_of(wall)
    await send(wall, CHEM_ORDER, CRITICAL_K)
    await settle(wall)
    assert len(service.engine.alerts()) == 1
    assert service.desk.open_alerts()
    snapshot = await overview(wall)
    (tat,) = snapshot["alerts"]
    (critical,) = snapshot["critical"]
    assert tat["label"] == "采集后未签收"
    assert tat["column"] == "receive"

    path = f"/lab/alerts/{tat['id']}/ack"
    assert (await wall.post(path, json={"note": "x"}, headers=AUTH)).status == 400
    response = await wall.post(path, json={"by": "张护士", "note": "已联系运送"}, headers=AUTH)
    assert response.status == 200
    assert (await response.json())["acknowledgement"]["by"] == "张护士"
    assert (await wall.post(path, json={"by": "李"}, headers=AUTH)).status == 409

    path = f"/lab/critical/{critical['id']}/ack"
    no_read_back = {**ACK, "read_back": " "}
    assert (await wall.post(path, json=no_read_back, headers=AUTH)).status == 400
    assert (await wall.post(path, json=ACK, headers=AUTH)).status == 200
    assert (await wall.post(path, json=ACK, headers=AUTH)).status == 409
    assert (await overview(wall))["critical"] == []

    stored = await runtime.resources.read("Communication", f"crit-{critical['id']}")
    payload = orjson.loads(stored.body or b"{}")["payload"]
    assert payload[1]["contentString"] == f"复述：{READ_BACK}"

    async def audited() -> list[Any]:
        found = await runtime.resources.audit.search(
            [AuditFilter("subtype", "=", "acknowledged")], 10, None, False
        )
        return list(found.items)

    await flushed(wall)
    assert len(await audited()) == 2
    agents = [orjson.loads(event.body or b"{}")["agent"] for event in await audited()]
    names = {agent.get("name") for found in agents for agent in found}
    # the named people, and the caller whose token acknowledged
    assert {"张护士", "梁思远", "api-key:clinician"} <= names


async def test_a_personal_view_asks_for_its_token_in_the_page(guarded: Client) -> None:
    """Without the open wall display the page asks for a token, refuses one without the
    right, and with a good one shows the live screen."""
    await send(guarded, CRITICAL_K)
    await settle(guarded)
    assert await _critical_open(guarded)
    async with screen_of(guarded, live=False) as page:
        login = page.locator("#login")
        await expect(login).to_be_visible(timeout=WAIT_MS)
        await page.get_by_label("访问令牌").first.fill("his-key")  # a system: no screen role
        await page.locator("#login-ok").click()
        await expect(page.locator("#login-note")).to_have_text(
            "此访问令牌无权查看大屏，请换一个", timeout=WAIT_MS
        )
        await page.get_by_label("访问令牌").first.fill("wall-key")
        await page.locator("#login-ok").click()
        await expect(page.locator("#live")).to_have_class("on", timeout=WAIT_MS)
        await expect(page.locator(".crit")).to_contain_text("杨*", timeout=WAIT_MS)


async def flushed(api: Client) -> None:
    """The audit trail is written in batches: what is buffered, written now."""
    audit = api.app[RUNTIME].audit
    assert audit is not None
    await audit.flush()


async def _critical_open(api: Client) -> bool:
    return bool((await overview(api, WALL))["critical"])
