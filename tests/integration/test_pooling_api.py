"""Pooled testing over HTTP: the collection desk opens a tube, scans ten people (the eleventh
is refused), closes it and prints the label; the LIS receives, registers and results it; a
positive tube answers with exactly its people's recall Tasks. Bad input gets a clear 4xx."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.lab.pool_tube import load_rules, pool_id
from tests.integration.fhir_api import Client, call, settle, start_api
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


def pool_oru(barcode: str, control_id: str, value: str) -> bytes:
    """The LIS's result on the tube, echoing the barcode under the collection desk's namespace."""
    return (
        f"MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20261126100000||ORU^R01^ORU_R01|{control_id}|P|2.5\r"
        "PID|1||HJQC0001^^^JHYY^PI||混检^样本\r"
        f"OBR|1|{barcode}^pooled-collection|26112600{control_id[-2:]}^LIS|"
        "94500-6^新型冠状病毒核酸^LN|||20261126090000||||||||||||||20261126100000||MB|F\r"
        f"OBX|1|ST|94500-6^新型冠状病毒核酸^LN||{value}||||||F\r"
        f"SPM|1|{barcode}&pooled-collection^26112600{control_id[-2:]}&LIS||258529004^咽拭子^SCT\r"
    ).encode()


async def tube_with(api: Client, people: range) -> str:
    opened = await api.post("/lab/pools", json={"collection_point": "鉴湖采样点"}, headers=DESK)
    barcode = str((await opened.json())["barcode"])
    for n in people:
        added = await api.post(f"/lab/pools/{barcode}/people", json=person(n), headers=DESK)
        assert added.status == 200, await added.text()
    assert (await api.post(f"/lab/pools/{barcode}/close", headers=DESK)).status == 200
    return barcode


async def test_an_oru_on_the_pool_barcode_results_the_tube(tmp_path: Path) -> None:
    """The LIS sends its result as HL7: the lab reads it as the tube's result and recalls
    exactly that tube's people; a negative tube's people are released; a result nobody agreed
    to read leaves the tube to a person."""
    api = await start_api(tmp_path, consume=True)
    try:
        positive, negative, unclear = (
            await tube_with(api, range(3)),
            await tube_with(api, range(3, 5)),
            await tube_with(api, range(5, 6)),
        )
        hl7 = {**LIS, "Content-Type": "text/plain"}
        for barcode, control, value in (
            (positive, "POOL01", "阳性"),
            (negative, "POOL02", "阴性"),
            (unclear, "POOL03", "无效，需重采"),
        ):
            sent = await api.post("/hl7v2", data=pool_oru(barcode, control, value), headers=hl7)
            assert "|AA|" in await sent.text()

        async def state(barcode: str) -> set[str]:
            tube = await (await api.get(f"/lab/pools/{barcode}", headers=DESK)).json()
            return set(tube["states"])

        await settle(api)
        assert await state(positive) == {"retest-single-tube"}
        assert await state(negative) == {"released"}
        tube = f"Specimen/{pool_id(positive, load_rules())}"
        _, recall, _ = await call(api, "GET", f"Task?focus={tube}")
        assert recall["total"] == 3  # one re-test Task per person of that tube
        assert await state(unclear) == {"pooled"}
    finally:
        await api.close()


def pool_ssu(barcode: str, control_id: str, status: str, accession: str = "") -> bytes:
    return (
        f"MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20261126093000||SSU^U03^SSU_U03|{control_id}|P|2.5\r"
        "EQU|LIS01|20261126093000\r"
        f"SAC||{accession}|{barcode}^pooled-collection|||||{status}\r"
    ).encode()


async def test_the_lis_receives_and_registers_a_pool_tube_over_hl7(tmp_path: Path) -> None:
    """SSU^U03 from the LIS: 签收 (REC) then 登记 (REG with SAC-2 the accession number) on the
    pool barcode do what the pooling API's receive and register do."""
    api = await start_api(tmp_path, consume=True)
    try:
        barcode = await tube_with(api, range(2))
        hl7 = {**LIS, "Content-Type": "text/plain"}

        async def tube() -> Any:
            return await (await api.get(f"/lab/pools/{barcode}", headers=DESK)).json()

        sent = await api.post("/hl7v2", data=pool_ssu(barcode, "SSU01", "REC"), headers=hl7)
        assert "|AA|" in await sent.text()
        await settle(api)
        assert await _has(tube, "received_at")
        assert (await tube())["accession"] is None
        registered = pool_ssu(barcode, "SSU02", "REG", accession="HJ2611260042^LIS")
        assert "|AA|" in await (await api.post("/hl7v2", data=registered, headers=hl7)).text()
        await settle(api)
        assert await _has(tube, "accession")
        assert (await tube())["accession"] == "HJ2611260042"
    finally:
        await api.close()


async def _has(tube: Any, key: str) -> bool:
    return bool((await tube())[key])
