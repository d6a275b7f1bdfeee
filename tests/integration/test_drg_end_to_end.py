"""From HL7 to the DRG platform: the HIS's admission, charges and discharge arrive over MLLP,
the hub normalizes them into the FHIR store, and the stay's front page, settlement list and
fee details are built, checked and accepted by the platform simulator; then a corrected main
diagnosis reverses the front page and uploads it again; all of it in the ledger."""

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from adapters.drg import interfaces as drg
from adapters.drg.discharges import QUIET, report_changed
from adapters.drg.simulator import PLATFORM, create_app
from hub.hl7v2.client import MllpClient
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from store.ledger import ACCEPTED, CANCELLED, LedgerQuery
from tests.integration.fhir_api import Client, start_api
from tests.integration.test_first_hour import JIANHU
from tests.unit.test_drg_documents import ADMISSION, CHARGES, discharge_message, text_of

OPS = {"Authorization": "Bearer ops-key"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Client, Any]]:
    simulator = create_app(app_id="A1", org_code="O1")
    server = TestServer(simulator)
    await server.start_server()
    config = {"base_url": str(server.make_url("")).rstrip("/"), "app_id": "A1", "org_code": "O1"}
    hub = await start_api(tmp_path, consume=True, drg=config)
    yield hub, simulator[PLATFORM]
    await hub.close()
    await server.close()


async def send(hub: Client, *messages: str) -> None:
    runtime = hub.app[RUNTIME]
    client = MllpClient("127.0.0.1", runtime.listeners[0].port)
    try:
        for text in messages:
            assert (await client.send(text)).outcome == "accepted"
    finally:
        await client.close()

    await runtime.settle()
    found = await runtime.archive.search(ArchiveQuery(limit=100))
    assert {m.status for m in found} == {"stored"}


async def report(hub: Client) -> None:
    runtime = hub.app[RUNTIME]
    later = datetime.now(UTC) + QUIET + timedelta(minutes=1)  # the stay has been quiet
    await report_changed(runtime.resources, runtime.courier, later - timedelta(hours=1), later)


async def test_a_stay_reaches_the_platform_and_a_correction_is_reversed(
    rig: tuple[Client, Any],
) -> None:
    hub, platform = rig
    delivery = hub.app[RUNTIME].courier
    scheduler = hub.app[RUNTIME].scheduler
    assert scheduler is not None
    assert "drg-discharges" in {job.name for job in scheduler.jobs}  # the hub reports by itself
    registered = await delivery.submit("drg", drg.ORG_REGIST, "O1", {"ORG_NAME": "绍兴某医院"})
    assert registered.status == ACCEPTED
    discharge = discharge_message()
    await send(hub, text_of(ADMISSION), text_of(CHARGES), discharge)
    await report(hub)
    ledger = hub.app[RUNTIME].store.ledger
    uploads = await ledger.search(LedgerQuery(adapter="drg", limit=20))
    by_interface = {s.interface: s for s in uploads if s.kind == "upload"}
    assert {
        i: by_interface[i].status for i in (drg.FRONT_PAGE, drg.SETTLEMENT_LIST, drg.FEE_DETAILS)
    } == {
        drg.FRONT_PAGE: ACCEPTED,
        drg.SETTLEMENT_LIST: ACCEPTED,
        drg.FEE_DETAILS: ACCEPTED,
    }
    assert (
        len(platform.front_pages),
        len(platform.settlement_lists),
        len(platform.fee_details),
    ) == (1, 1, 1)
    first = by_interface[drg.FRONT_PAGE]
    assert '"JBDM":"J18.900"' in first.payload

    # the coder corrects the main diagnosis: the HIS sends the discharge again
    corrected = discharge.replace("J18.900^肺炎", "J15.900^细菌性肺炎").replace(
        "HIS202603111015020099", "HIS202603111015020100"
    )
    await send(hub, corrected)
    await report(hub)
    assert (await ledger.get(first.id)).status == CANCELLED
    reversal = await ledger.latest(
        "drg", drg.FRONT_PAGE_REVERSAL, first.business_key, kind="cancel"
    )
    assert reversal is not None
    assert reversal.status == ACCEPTED
    assert reversal.cancels == first.id
    again = await ledger.latest("drg", drg.FRONT_PAGE, first.business_key)
    assert again is not None
    assert again.status == ACCEPTED
    assert again.replaces == first.id
    assert '"JBDM":"J15.900"' in again.payload
    # charges did not change: the settlement list and fee details were not sent again
    assert len([s for s in await ledger.search(LedgerQuery(interface=drg.FEE_DETAILS))]) == 1
    listed = await (await hub.get(f"/ops/ledger?key={first.business_key}", headers=OPS)).json()
    assert len(listed) == 5  # three uploads, the reversal and the re-upload


async def test_a_stay_that_fails_the_checks_is_recorded_not_sent(
    rig: tuple[Client, Any],
) -> None:
    hub, platform = rig
    delivery = hub.app[RUNTIME].courier
    await delivery.submit("drg", drg.ORG_REGIST, "O1", {"ORG_NAME": "绍兴某医院"})
    # discharged to another hospital (离院方式 2) without naming it (拟接收医疗机构)
    transfer = discharge_message().replace("1^医嘱离院^CV06.00.226", "2^医嘱转院^CV06.00.226")
    await send(hub, text_of(ADMISSION), text_of(CHARGES), transfer)
    await report(hub)
    ledger = hub.app[RUNTIME].store.ledger
    front = next(
        s for s in await ledger.search(LedgerQuery(interface=drg.FRONT_PAGE)) if s.kind == "upload"
    )
    assert front.status == "rejected"
    assert front.error.startswith("not sent: ")
    assert "YZZY_YLJG" in front.error  # the field a person must fill in at the source
    assert front.attempts == ()
    assert not platform.front_pages  # nothing reached the platform


async def test_an_operator_reports_the_stays_from_the_command_line(
    rig: tuple[Client, Any],
) -> None:
    """``jianhu drg report``: the adapter's own command, declared in its plugin."""
    hub, platform = rig
    runtime = hub.app[RUNTIME]
    await runtime.courier.submit("drg", drg.ORG_REGIST, "O1", {"ORG_NAME": "绍兴某医院"})
    await send(hub, text_of(ADMISSION), text_of(CHARGES), discharge_message())
    config = runtime.settings.section("drg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIANHU_")} | {
        "JIANHU_DATA_DIR": str(runtime.settings.data_dir),
        "JIANHU_DRG__BASE_URL": config.base_url,
        "JIANHU_DRG__APP_ID": "A1",
        "JIANHU_DRG__ORG_CODE": "O1",
    }

    def jianhu(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(JIANHU), "drg", "report", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    still_recording = await asyncio.to_thread(jianhu)  # discharged a moment ago: too fresh
    assert still_recording.returncode == 0, still_recording.stderr
    assert still_recording.stdout.strip() == "no finished stay to report"
    done = await asyncio.to_thread(jianhu, "--quiet-minutes", "0")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith("Encounter/")
    assert f"{drg.FRONT_PAGE}=accepted" in line
    assert platform.front_pages  # it reached the platform
    for name in ("JIANHU_DRG__BASE_URL", "JIANHU_DRG__APP_ID", "JIANHU_DRG__ORG_CODE"):
        env.pop(name)
    unconfigured = await asyncio.to_thread(jianhu)
    assert unconfigured.returncode == 2
    assert "not configured" in unconfigured.stderr
