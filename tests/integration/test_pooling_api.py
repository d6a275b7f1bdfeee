"""Pooled testing over HTTP: the collection desk opens a tube, scans ten people (the eleventh
is refused), closes it and prints the label; the LIS receives, registers and results it; a
positive tube answers with exactly its people's recall Tasks. Bad input gets a clear 4xx."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.fhir_api import Client, start_api
from tests.unit.test_lab_pooling import card

DESK = {"Authorization": "Bearer emr-key"}
LIS = {"Authorization": "Bearer his-key"}
SCREEN = {"Authorization": "Bearer wall-key"}


def person(n: int) -> dict[str, str]:
    return {
        "id_card": card(f"330602{1980 + n}0101{n:03d}"),
        "name": f"居民{n}",
        "phone": f"1380000{n:04d}",
        "address": "鉴湖路1号",
    }


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    client = await start_api(tmp_path)
    yield client
    await client.close()


async def test_a_tube_from_collection_to_recall(api: Client) -> None:
    opened = await api.post("/lab/pools", json={"collection_point": "鉴湖采样点"}, headers=DESK)
    assert opened.status == 201
    barcode = (await opened.json())["barcode"]
    for n in range(10):
        added = await api.post(f"/lab/pools/{barcode}/people", json=person(n), headers=DESK)
        assert added.status == 200, await added.text()
    eleventh = await api.post(f"/lab/pools/{barcode}/people", json=person(10), headers=DESK)
    assert eleventh.status == 409
    assert "10" in (await eleventh.json())["issue"][0]["diagnostics"]
    closed = await (await api.post(f"/lab/pools/{barcode}/close", headers=DESK)).json()
    assert closed["people"] == 10
    assert closed["closed_at"]
    label = await api.get(f"/lab/pools/{barcode}/label", headers=DESK)
    assert label.content_type == "application/pdf"
    assert (await label.read()).startswith(b"%PDF")

    assert (await api.post(f"/lab/pools/{barcode}/receive", headers=LIS)).status == 200
    registered = await api.post(
        f"/lab/pools/{barcode}/register", json={"accession": "HJ20261126001"}, headers=LIS
    )
    assert (await registered.json())["accession"] == "HJ20261126001"
    result = await (
        await api.post(f"/lab/pools/{barcode}/result", json={"positive": True}, headers=LIS)
    ).json()
    assert len(result["recall"]) == 10  # one Task per person in this tube, nobody else
    assert set(result["states"]) == {"retest-single-tube"}


async def test_refusals(api: Client) -> None:
    opened = await api.post("/lab/pools", json={"collection_point": "鉴湖采样点"}, headers=DESK)
    barcode = (await opened.json())["barcode"]
    wrong = {**person(1), "id_card": person(1)["id_card"][:17] + "0"}
    if wrong["id_card"] == person(1)["id_card"]:
        wrong["id_card"] = person(1)["id_card"][:17] + "1"
    refused = await api.post(f"/lab/pools/{barcode}/people", json=wrong, headers=DESK)
    assert refused.status == 422  # the check character, before anything is written
    assert (await api.post("/lab/pools", json={}, headers=DESK)).status == 422
    assert (await api.get("/lab/pools/NOPE0000", headers=DESK)).status == 404
    assert (await api.post(f"/lab/pools/{barcode}/result", json={}, headers=LIS)).status == 422
    assert (await api.post(f"/lab/pools/{barcode}/receive", headers=DESK)).status == 403
    assert (await api.get(f"/lab/pools/{barcode}", headers=SCREEN)).status == 403
