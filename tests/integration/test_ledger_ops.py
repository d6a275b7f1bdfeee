"""The delivery ledger for operations, through the ops API and the CLI: lists without
payloads, one submission in full, cancel, redrive, and clear refusals (unknown filter, unknown
id, an adapter this hub is not configured for, a role that may not look)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from hub.base.envelope import new_id
from hub.cli.main import main
from hub.web.keys import RUNTIME
from store.ledger import DEAD, FAILED, PENDING, Attempt, Submission
from tests.integration.fhir_api import Client, start_api

OPS = {"Authorization": "Bearer ops-key"}
CLINICIAN = {"Authorization": "Bearer emr-key"}
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def submission(key: str, status: str) -> Submission:
    return Submission(
        id=new_id(),
        adapter="drg",
        interface="baInfo",
        business_key=key,
        kind="upload",
        payload=orjson.dumps({"BAH": key, "XM": "张伟"}).decode(),
        content_hash=key,
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    client = await start_api(tmp_path)
    ledger = client.app[RUNTIME].store.ledger
    await ledger.add(submission("BA001-1", PENDING))
    dead = submission("BA002-1", PENDING)
    await ledger.add(dead)
    attempt = Attempt(1, NOW, NOW, "failed", '{"BAH":"BA002-1"}', "HTTP 503", "HTTP 503")
    await ledger.finish(dead.id, attempt, DEAD)
    yield client
    await client.close()


async def test_list_show_cancel_and_redrive(api: Client, tmp_path: Path) -> None:
    listed = await (await api.get("/ops/ledger?adapter=drg", headers=OPS)).json()
    assert {s["business_key"]: s["status"] for s in listed} == {
        "BA001-1": PENDING,
        "BA002-1": DEAD,
    }
    assert all("payload" not in s for s in listed)  # lists carry no patient data
    dead = next(s for s in listed if s["status"] == DEAD)
    shown = await (await api.get(f"/ops/ledger/{dead['id']}", headers=OPS)).json()
    assert "张伟" in shown["payload"]
    assert shown["attempts"][0]["response"] == "HTTP 503"
    only_dead = await (await api.get("/ops/ledger?status=dead", headers=OPS)).json()
    assert [s["id"] for s in only_dead] == [dead["id"]]

    pending = next(s for s in listed if s["status"] == PENDING)
    cancelled = await api.post(f"/ops/ledger/{pending['id']}/cancel", headers=OPS)
    assert (await cancelled.json())["status"] == "cancelled"
    # this hub has no DRG configuration: a retry is refused with the reason, nothing changes
    refused = await api.post(f"/ops/ledger/{dead['id']}/retry", headers=OPS)
    assert refused.status == 409
    assert "not configured" in (await refused.json())["issue"][0]["diagnostics"]

    redriven = await api.post("/ops/ledger/redrive", json={"adapter": "drg"}, headers=OPS)
    assert await redriven.json() == {"redriven": 1}
    again = await (await api.get(f"/ops/ledger/{dead['id']}", headers=OPS)).json()
    assert again["status"] == PENDING

    cli = await asyncio.to_thread(  # the CLI runs its own event loop, on the same data
        CliRunner().invoke,
        main,
        ["ledger", "list", "--adapter", "drg", "--status", "pending"],
        env={"JIANHU_DATA_DIR": str(tmp_path)},
    )
    assert cli.exit_code == 0, cli.output
    assert [s["id"] for s in orjson.loads(cli.output)] == [dead["id"]]
    shown_cli = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["ledger", "show", dead["id"]],
        env={"JIANHU_DATA_DIR": str(tmp_path)},
    )
    assert orjson.loads(shown_cli.output)["attempts"][0]["outcome"] == FAILED


async def test_refusals(api: Client) -> None:
    assert (await api.get("/ops/ledger?colour=red", headers=OPS)).status == 400
    assert (await api.get("/ops/ledger/nope", headers=OPS)).status == 404
    assert (await api.get("/ops/ledger", headers=CLINICIAN)).status == 403
    assert (await api.post("/ops/ledger/redrive", json={}, headers=OPS)).status == 400
    missing = await api.post("/ops/ledger/nope/cancel", headers=OPS)
    assert missing.status == 404
