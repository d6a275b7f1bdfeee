"""The HL7 v2 archive for operations: list and show through the ops API and the CLI, replay a
query (a new attempt of the same message), and the retention policy that really deletes."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from hub.base.hospital_time import HOSPITAL
from hub.cli.main import main
from hub.hl7v2.retention import apply_retention
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from tests.integration.fhir_api import Client, settle, start_api

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
OPS = {"Authorization": "Bearer ops-key"}
SYSTEM = {"Authorization": "Bearer his-key", "Content-Type": "text/plain"}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Client]:
    """The hub with its consumers running, so messages get normalized."""
    client = await start_api(tmp_path, consume=True)
    yield client
    await client.close()


async def settled(api: Client, count: int) -> list[dict[str, Any]]:
    await settle(api)
    listed = await (await api.get("/ops/messages", headers=OPS)).json()
    assert len(listed) == count
    assert {m["status"] for m in listed} <= {"stored", "unmapped"}
    return list(listed)


async def test_list_show_replay_and_retention(hub: Client, tmp_path: Path) -> None:
    api = hub
    for name in ("19-lis-oru-r01-cbc-corrected.hl7", "41-his-siu-s12-booking.hl7"):
        response = await api.post("/hl7v2", data=(CORPUS / name).read_bytes(), headers=SYSTEM)
        assert response.status == 200
    listed = await settled(api, 2)
    assert {m["type"]: m["status"] for m in listed} == {"ORU^R01": "stored", "SIU^S12": "stored"}
    assert all("text" not in m for m in listed)  # lists carry no patient data
    oru = next(m for m in listed if m["type"] == "ORU^R01")
    shown = await (await api.get(f"/ops/messages/{oru['id']}", headers=OPS)).json()
    assert shown["text"].startswith("MSH|")
    assert any(r.startswith("DiagnosticReport/") for r in shown["resources"])
    assert (await api.get("/ops/messages/nope", headers=OPS)).status == 404
    assert (await api.get("/ops/messages?colour=red", headers=OPS)).status == 400
    assert (await api.post("/ops/messages/replay", json={}, headers=OPS)).status == 400

    replayed = await api.post("/ops/messages/replay", json={"type": "ORU^R01"}, headers=OPS)
    assert await replayed.json() == {"replayed": 1}
    again = await settled(api, 2)
    assert next(m for m in again if m["id"] == oru["id"])["attempts"] == 2

    cli = await asyncio.to_thread(  # the CLI runs its own event loop
        CliRunner().invoke,
        main,
        ["messages", "list", "--type", "SIU^S12"],
        env={"JIANHU_DATA_DIR": str(tmp_path)},
    )
    assert cli.exit_code == 0, cli.output
    assert '"SIU^S12"' in cli.output

    archive = api.app[RUNTIME].archive
    assert await apply_retention(archive, {"SIU^S12": 0}) == 1
    assert [m["type"] for m in await settled(api, 1)] == ["ORU^R01"]


async def test_times_without_offset_are_hospital_time_and_times_shown_carry_it(
    hub: Client, tmp_path: Path
) -> None:
    """``since`` without an offset is Asia/Shanghai on the ops API as on the CLI; the archive
    shows +08:00 like the rest of the hub."""
    body = (CORPUS / "41-his-siu-s12-booking.hl7").read_bytes()
    assert (await hub.post("/hl7v2", data=body, headers=SYSTEM)).status == 200
    [listed] = await settled(hub, 1)
    received = datetime.fromisoformat(listed["received_at"])
    assert listed["received_at"].endswith("+08:00")
    wall = received.astimezone(HOSPITAL).replace(tzinfo=None)  # as a person reads the clock
    before, after = wall - timedelta(minutes=1), wall + timedelta(minutes=1)
    for since, count in ((before, 1), (after, 0)):  # 8 hours apart if read as UTC
        query = urlencode({"since": since.isoformat(timespec="seconds")})
        found = await (await hub.get(f"/ops/messages?{query}", headers=OPS)).json()
        assert len(found) == count, (since, found)
        cli = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["messages", "list", "--since", since.strftime("%Y-%m-%d %H:%M:%S")],
            env={"JIANHU_DATA_DIR": str(tmp_path)},
        )
        assert cli.exit_code == 0, cli.output
        assert cli.output.count('"received_at"') == count


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/ops/messages?limit=-1", None),
        ("GET", "/ops/messages?limit=100000", None),
        ("GET", "/ops/messages?limit=ten", None),
        ("GET", "/ops/messages?since=yesterday", None),
        ("GET", "/ops/messages?status=lost", None),
        ("POST", "/ops/messages/replay", {"ids": "notalist"}),
        ("POST", "/ops/messages/replay", {"ids": []}),
        ("POST", "/ops/messages/replay", {"ids": [1, 2]}),
        ("POST", "/ops/messages/replay", {"ids": ["x"], "type": "ORU^R01"}),
        ("POST", "/ops/messages/replay", {"type": ["ORU^R01"]}),
        ("POST", "/ops/messages/replay", ["not", "an", "object"]),
    ],
)
async def test_the_ops_api_checks_its_inputs(
    hub: Client, method: str, path: str, body: Any
) -> None:
    response = await hub.request(method, path, json=body, headers=OPS)
    assert response.status == 400
    outcome = await response.json(content_type=None)
    assert outcome["resourceType"] == "OperationOutcome"


async def test_retention_keeps_what_is_unfinished_or_waits_for_a_person(hub: Client) -> None:
    """A message still on its way (a big one's text lives only in the archive) or in the dead
    letters is kept however old; only finished ones are purged."""
    archive = hub.app[RUNTIME].archive
    for name in ("19-lis-oru-r01-cbc-corrected.hl7", "41-his-siu-s12-booking.hl7"):
        response = await hub.post("/hl7v2", data=(CORPUS / name).read_bytes(), headers=SYSTEM)
        assert response.status == 200
    await settle(hub)
    stored = {m.message_type: m for m in await archive.search(ArchiveQuery(limit=5))}
    await archive.set_status(stored["SIU^S12"].id, "failed", "no mapping", processed=True)
    assert await apply_retention(archive, {"SIU^S12": 0, "ORU^R01": 0}) == 1
    (kept,) = await archive.search(ArchiveQuery(limit=5))
    assert (kept.message_type, kept.status) == ("SIU^S12", "failed")
