"""The DRG adapter as the hub runs it: configured by environment, the simulator started by
``jianhu simulate drg`` in its own process, and a front page delivered through the running
hub's ledger and ops API, then corrected (reversal and re-upload) by an operator's retry."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from adapters.drg import interfaces as drg
from adapters.drg.config import DrgConfig
from adapters.drg.interfaces import business_key
from hub.settings import load_settings
from hub.web.keys import RUNTIME
from store.ledger import ACCEPTED, CANCELLED
from tests.integration.fhir_api import Client, start_api
from tests.integration.test_drg_contract import front_page

OPS = {"Authorization": "Bearer ops-key"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    port = free_port()
    jianhu = Path(sys.executable).with_name("jianhu")
    process = subprocess.Popen(
        [str(jianhu), "simulate", "drg", "--port", str(port), "--app-id", "A1", "--org-code", "O1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_state", timeout=1):
                break
        except OSError:
            assert process.poll() is None, process.stdout.read() if process.stdout else b""
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_the_drg_platform_is_configured_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JIANHU_DRG__BASE_URL", "https://drg.example:8443")
    monkeypatch.setenv("JIANHU_DRG__APP_ID", "A1")
    monkeypatch.setenv("JIANHU_DRG__ORG_CODE", "O1")
    monkeypatch.setenv("JIANHU_DRG__PATHS", '{"baInfo/v1": "/zj/ba/upload"}')
    config: DrgConfig | None = load_settings().section("drg")
    assert config is not None
    assert config.path("baInfo/v1") == "/zj/ba/upload"
    assert config.path("baInfo/v2") == "/drgPms/nologin/drgUpload/baInfo/v2"


@pytest.fixture
async def hub(tmp_path: Path, simulator: str) -> AsyncIterator[Client]:
    config = {"base_url": simulator, "app_id": "A1", "org_code": "O1", "timeout_s": 5}
    client = await start_api(tmp_path, drg=config)
    yield client
    await client.close()


async def test_a_front_page_through_the_hub_and_an_operators_cancel(hub: Client) -> None:
    delivery = hub.app[RUNTIME].courier
    assert "drg" in delivery.adapters
    registered = await delivery.submit(
        "drg", drg.ORG_REGIST, "O1", {"ORG_NAME": "绍兴市某人民医院"}
    )
    assert registered.status == ACCEPTED
    bah = f"W{os.getpid() % 100000:05d}"  # the simulator process outlives one test
    key = business_key(bah, 1)
    upload = await delivery.submit("drg", drg.FRONT_PAGE, key, front_page(bah, HOS_ID="O1"))
    assert upload.status == ACCEPTED, upload.error

    listed = await (await hub.get(f"/ops/ledger?key={key}", headers=OPS)).json()
    assert [s["status"] for s in listed] == [ACCEPTED]
    cancelled = await hub.post(f"/ops/ledger/{upload.id}/cancel", headers=OPS)
    assert (await cancelled.json())["status"] == ACCEPTED  # the reversal, accepted
    shown = await (await hub.get(f"/ops/ledger/{upload.id}", headers=OPS)).json()
    assert shown["status"] == CANCELLED
    async with aiohttp.ClientSession() as session:
        url = f"{delivery.adapters['drg'].transport.base_url}/_state"
        state = await (await session.get(url)).json()
    assert state["front_pages"] == 0  # withdrawn at the platform too
