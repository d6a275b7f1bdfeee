"""How normalized messages meet what the store already holds: ADT owns Patient and Encounter
and other messages only create them when missing; an order and its result each add to the
same Specimen; a reschedule updates the booking; ADT^A40 merges a patient, moves every
reference and files later results for the old number under the survivor. On every backend."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.hl7v2.persist import persist
from store.resources import ResourceStore
from tests.stores import BACKENDS, open_store

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))


@pytest.fixture(params=BACKENDS)
async def store(request: Any, tmp_path: Path) -> AsyncIterator[ResourceStore]:
    async with open_store(request.param, tmp_path) as opened:  # skips MongoDB without a server
        yield opened


def corpus(prefix: str) -> str:
    entry = next(e for e in MANIFEST if e["file"].startswith(prefix))
    return str((CORPUS / entry["file"]).read_bytes().decode(entry["charset"]))


async def take(store: ResourceStore, text: str) -> list[str]:
    return await persist(store, normalize(Message(text)))


async def body(store: ResourceStore, key: str) -> dict[str, Any]:
    type_, _, id_ = key.partition("/")
    found: dict[str, Any] = orjson.loads((await store.read(type_, id_)).body or b"{}")
    return found


def first(keys: list[str], type_: str) -> str:
    return next(k for k in keys if k.startswith(f"{type_}/"))


async def test_a_lab_result_does_not_overwrite_the_registered_patient_or_visit(
    store: ResourceStore,
) -> None:
    admission = await take(store, corpus("04-"))  # HIS registers the fever-clinic visit
    patient, visit = first(admission, "Patient"), first(admission, "Encounter")
    registered = await body(store, patient)
    assert registered.get("address")
    # the EMR's CT order, the LIS's blood count, the PACS report and the HIS's fees
    for prefix in ("15-", "19-", "35-", "46-"):
        quoted = await take(store, corpus(prefix))
        assert first(quoted, "Encounter") == visit, prefix  # one visit, whoever quotes it
        assert first(quoted, "Patient") == patient, prefix
    after = await body(store, patient)
    assert after["address"] == registered["address"]
    assert after["meta"]["versionId"] == registered["meta"]["versionId"]


async def test_context_creates_a_missing_patient_and_adt_then_owns_it(
    store: ResourceStore,
) -> None:
    keys = await take(store, corpus("19-"))  # a result before any ADT for 刘洋
    patient = first(keys, "Patient")
    assert (await body(store, patient))["meta"]["versionId"] == "1"
    adt = corpus("19-").split("\r")[1]  # the same PID, now in an ADT^A08 from the HIS
    message = (
        "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260305120000||ADT^A08^ADT_A01|A08X|P|2.5\r"
        "EVN|A08|20260305120000\r" + adt.replace("刘^洋", "刘^阳") + "\r"
    )
    await take(store, message)
    updated = await body(store, patient)
    assert updated["meta"]["versionId"] == "2"
    assert updated["name"][0]["text"] == "刘阳"


async def test_the_order_and_the_result_both_add_to_the_specimen(store: ResourceStore) -> None:
    order = await take(store, corpus("17-"))
    result = await take(store, corpus("25-"))
    specimen = first(order, "Specimen")
    assert specimen in result
    merged = await body(store, specimen)
    assert merged.get("request"), "the order's link is kept after the result"
    assert merged["meta"]["versionId"] == "2"
    # the other way round gives the same elements
    other = await take(store, corpus("25-"))
    assert first(other, "Specimen") == specimen


async def test_a_modification_updates_the_booking_instead_of_replacing_it(
    store: ResourceStore,
) -> None:
    booked = await take(store, corpus("41-"))
    appointment = first(booked, "Appointment")
    before = await body(store, appointment)
    await take(store, corpus("43-"))
    after = await body(store, appointment)
    assert after["meta"]["versionId"] == "2"
    assert after.get("serviceType") == before.get("serviceType")  # S14 does not carry it
    assert after.get("serviceType")


OLD_NUMBER_RESULT = (
    "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|{when}||ORU^R01^ORU_R01|{control}|P|2.5\r"
    "PID|1||10023999^^^JHYY^PI||张^伟||19680412|M\r"
    "OBR|1|{order}^HIS|{order}^LIS|GLU^血糖^L|||20260311080000\r"
    "OBX|1|NM|GLU^葡萄糖^L||5.6|mmol/L|3.9-6.1||||F\r"
)


async def test_a_patient_merge_moves_every_reference_to_the_survivor(
    store: ResourceStore,
) -> None:
    before = await take(
        store, OLD_NUMBER_RESULT.format(when="20260311090000", control="R1", order="O1")
    )
    retired = first(before, "Patient")
    observation = first(before, "Observation")
    merged = await take(store, corpus("10-"))
    survivor = first(merged, "Patient")
    assert survivor != retired
    assert retired in merged
    assert (await body(store, observation))["subject"]["reference"] == survivor
    report = await body(store, first(before, "DiagnosticReport"))
    assert report["subject"]["reference"] == survivor
    old = await body(store, retired)
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": survivor}, "type": "replaced-by"}]
    assert (await body(store, survivor))["link"][0] == {
        "other": {"reference": retired},
        "type": "replaces",
    }
    # the LIS still sends the old number: the new result is filed under the survivor
    later = await take(
        store, OLD_NUMBER_RESULT.format(when="20260312100000", control="R2", order="O2")
    )
    assert retired not in later
    assert (await body(store, first(later, "Observation")))["subject"]["reference"] == survivor


def test_a_merge_without_mrg_is_refused() -> None:
    text = corpus("10-").split("\rMRG")[0]
    with pytest.raises(ValueError, match="MRG"):
        normalize(Message(text))


async def test_two_results_for_a_new_patient_in_one_commit_both_land(
    store: ResourceStore,
) -> None:
    """The second message's Patient is 'created meanwhile' by the first, not yet committed:
    context is satisfied, nothing is retried."""
    first_result = OLD_NUMBER_RESULT.format(when="20260311090000", control="R1", order="O1")
    second_result = OLD_NUMBER_RESULT.format(when="20260311091000", control="R2", order="O2")
    both = await asyncio.gather(take(store, first_result), take(store, second_result))
    assert first(both[0], "Patient") == first(both[1], "Patient")
    assert (await body(store, first(both[0], "Patient")))["meta"]["versionId"] == "1"
