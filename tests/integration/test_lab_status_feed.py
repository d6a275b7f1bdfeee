"""The LIS's specimen status updates (SSU^U03) arrive over HTTP intake like any HL7 message:
accepted, archived, written into the tube's Specimen (its latest status, what the order said of
it kept), and read by the lab's specimen tracking, which moves the tube the order created to the
stage the LIS reports."""

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.lab.lifecycle import Stage
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from tests.integration.fhir_api import Client, start_api

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
SYSTEM = {"Authorization": "Bearer his-key", "Content-Type": "text/plain"}
REGISTERED = (
    "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20260305083100||SSU^U03^SSU_U03|SSU0001|P|2.5\r"
    "EQU|LIS01|20260305083100\r"
    "SAC|||2603050301^HIS|||||REG\r"
)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Client]:
    client = await start_api(tmp_path, consume=True)
    yield client
    await client.close()


async def test_an_ssu_moves_the_ordered_tube(hub: Client) -> None:
    order = (CORPUS / "17-his-oml-o21-flu-order.hl7").read_bytes()
    assert (await hub.post("/hl7v2", data=order, headers=SYSTEM)).status == 200
    status = await hub.post("/hl7v2", data=REGISTERED.encode(), headers=SYSTEM)
    assert "MSA|AA|SSU0001" in await status.text()
    runtime = hub.app[RUNTIME]

    await runtime.settle()
    found = await runtime.archive.search(ArchiveQuery(limit=10))
    assert {m.status for m in found} == {"stored"}
    assert runtime.lab is not None
    (tube,) = [
        r for r in normalize(Message(order.decode())).resources if r["resourceType"] == "Specimen"
    ]
    stored = orjson.loads((await runtime.resources.read("Specimen", tube["id"])).body or b"{}")
    assert stored["processing"][0]["procedure"]["coding"][0]["code"] == "REG"
    assert stored["subject"] == tube["subject"]  # the order's part of the story stays
    assert stored["type"] == tube["type"]
    track = runtime.lab.engine.track(tube["id"])
    assert track is not None
    assert Stage.REGISTERED in track.times  # the LIS's REG, on the tube the HIS ordered


async def test_statistics_over_http(hub: Client) -> None:
    wall = {"Authorization": "Bearer wall-key"}
    assert (await hub.get("/lab/statistics", headers=wall)).status == 200
    assert await (await hub.get("/lab/statistics", headers=wall)).json() == []  # nothing done yet
    unknown = await hub.get("/lab/statistics?rule=nope", headers=wall)
    assert unknown.status == 400
    assert (await hub.get("/lab/statistics")).status == 401
