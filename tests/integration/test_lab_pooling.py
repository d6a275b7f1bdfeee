"""Pooled testing (混检) on a real SQLite store: patients found or made from the ID card, ten
people to a tube, registration by the LIS, and a result that recalls or releases exactly the
tube's people."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from fhir_profiles.identifiers import RESIDENT_ID_CARD
from fhir_profiles.validation import validate
from hub.base.hospital_time import HOSPITAL
from hub.lab.labels import label_for, render_label
from hub.lab.pool_tube import (
    AlreadyInTubeError,
    EmptyTubeError,
    IdCardError,
    MemberState,
    Person,
    PoolFinding,
    ResultConflictError,
    TubeClosedError,
    TubeFullError,
    TubeNotFoundError,
)
from hub.lab.pooling import (
    PoolingService,
)
from store.query import parse_search
from store.resources import Resource, ResourceStore
from store.sqlite import SqliteStore

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def card(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def person(n: int) -> Person:
    """The n-th resident of the test: distinct cards, born 1980 plus n."""
    return Person(card(f"330602{1980 + n}0101{n:03d}"), f"居民{n}", f"1380000{n:04d}", "鉴湖路")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 3, 8, 0, tzinfo=HOSPITAL)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=30)  # each scan a little later
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ResourceStore]:
    sqlite = SqliteStore(tmp_path / "jianhu.sqlite3")
    await sqlite.open()
    yield sqlite.resources
    await sqlite.close()


@pytest.fixture
def service(store: ResourceStore) -> PoolingService:
    return PoolingService(store, clock=Clock())


async def fill(service: PoolingService, barcode: str, people: range) -> None:
    await service.open_tube("鉴湖社区采样点", barcode)
    for n in people:
        await service.add_person(barcode, person(n))


async def all_of(store: ResourceStore, type_: str, *pairs: tuple[str, str]) -> list[Resource]:
    page = await store.search(parse_search(type_, pairs), count=200)
    return [orjson.loads(item.body) for item in page.items if item.body is not None]


async def test_a_bad_check_character_is_refused_before_anything_is_written(
    service: PoolingService, store: ResourceStore
) -> None:
    await service.open_tube("x", "HJ0001")
    good = person(1).id_card
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(IdCardError):
        await service.add_person("HJ0001", Person(wrong, "居民", "138", "路"))
    assert await all_of(store, "Patient") == []
    assert (await service.tube("HJ0001")).members == ()


async def test_a_patient_is_found_by_the_card_or_created_once(
    service: PoolingService, store: ResourceStore
) -> None:
    created = await service.find_or_create_patient(person(1))
    again = await service.find_or_create_patient(person(1))
    assert again["id"] == created["id"]
    assert created["identifier"] == [{"system": RESIDENT_ID_CARD, "value": person(1).id_card}]
    assert created["telecom"][0]["value"] == person(1).phone
    assert created["address"][0]["text"] == "鉴湖路"
    assert validate(created) == []
    # one the HIS made earlier under another id is found by its identifier and used as it is
    his = await store.create(
        {
            "resourceType": "Patient",
            "identifier": [{"system": RESIDENT_ID_CARD, "value": person(2).id_card}],
            "name": [{"text": "HIS"}],
        }
    )
    found = await service.find_or_create_patient(person(2))
    assert (found["id"], found["name"][0]["text"]) == (his.id, "HIS")
    assert len(await all_of(store, "Patient")) == 2


async def test_ten_people_fit_and_the_eleventh_is_refused(
    service: PoolingService, store: ResourceStore
) -> None:
    await fill(service, "HJ0010", range(10))
    with pytest.raises(TubeFullError):
        await service.add_person("HJ0010", person(10))
    tube = await service.tube("HJ0010")
    assert len(tube.members) == 10
    assert tube.specimen["container"][0]["specimenQuantity"]["value"] == 10
    assert len(await all_of(store, "Specimen", ("parent", f"Specimen/{tube.specimen['id']}"))) == 10
    for resource in [tube.specimen, *(member.specimen for member in tube.members)]:
        assert validate(resource) == [], resource


async def test_scanners_racing_on_one_tube_still_stop_at_ten(service: PoolingService) -> None:
    await service.open_tube("x", "HJ0011")
    results = await asyncio.gather(
        *(service.add_person("HJ0011", person(n)) for n in range(12)), return_exceptions=True
    )
    assert sum(isinstance(result, TubeFullError) for result in results) == 2
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, TubeFullError)]
    assert len((await service.tube("HJ0011")).members) == 10


async def test_the_same_person_twice_is_refused(service: PoolingService) -> None:
    await fill(service, "HJ0002", range(2))
    with pytest.raises(AlreadyInTubeError):
        await service.add_person("HJ0002", person(1))
    assert len((await service.tube("HJ0002")).members) == 2


async def test_closing_then_the_lis_receives_and_registers_by_barcode(
    service: PoolingService,
) -> None:
    await service.open_tube("x", "HJ0003")
    with pytest.raises(EmptyTubeError):
        await service.close_tube("HJ0003")
    await service.add_person("HJ0003", person(1))
    shut = await service.close_tube("HJ0003")
    assert shut.closed_at is not None
    assert (await service.close_tube("HJ0003")).version == shut.version  # harmless twice
    with pytest.raises(TubeClosedError):
        await service.add_person("HJ0003", person(2))
    received = await service.receive("HJ0003")
    registered = await service.register("HJ0003", "L20261103001")
    assert received.received_at is not None
    assert registered.received_at == received.received_at  # registration keeps the receipt
    assert registered.accession == "L20261103001"
    assert validate(registered.specimen) == []
    with pytest.raises(TubeNotFoundError):
        await service.register("HJ9999", "L1")


async def test_an_unclosed_tube_received_by_the_lab_is_closed(service: PoolingService) -> None:
    await fill(service, "HJ0004", range(1))
    assert (await service.receive("HJ0004")).closed_at is not None


async def test_a_positive_tube_recalls_exactly_its_people(
    service: PoolingService, store: ResourceStore
) -> None:
    await fill(service, "HJ0005", range(10))
    await fill(service, "HJ0006", range(10, 13))  # another tube, not recalled
    await service.close_tube("HJ0005")
    await service.register("HJ0005", "L1")
    before = len(await store.pending_events(1000))

    recall = await service.record_result("HJ0005", positive=True)

    tube = recall.tube
    assert tube.outcome is PoolFinding.POSITIVE
    assert sorted(task["for"]["reference"] for task in recall.tasks) == sorted(tube.patients())
    assert len(recall.tasks) == 10
    stored = await all_of(store, "Task")
    assert len(stored) == 10
    for task in stored:
        assert (task["status"], task["intent"]) == ("requested", "order")
        assert task["focus"] == {"reference": f"Specimen/{tube.specimen['id']}"}
        assert validate(task) == [], task
    assert {member.state for member in tube.members} == {MemberState.RETEST}
    other = await service.tube("HJ0006")
    assert {member.state for member in other.members} == {MemberState.POOLED}
    assert not set(other.patients()) & {t["for"]["reference"] for t in stored}
    # the event others subscribe to: one fhir.Task.created per person, in the outbox
    events = (await store.pending_events(1000))[before:]
    assert [e.topic for e in events].count("fhir.Task.created") == 10
    # the same result again changes nothing; a different one is refused
    again = await service.record_result("HJ0005", positive=True)
    assert len(again.tasks) == 10
    assert len(await all_of(store, "Task")) == 10
    with pytest.raises(ResultConflictError):
        await service.record_result("HJ0005", positive=False)


async def test_a_negative_tube_releases_everyone(
    service: PoolingService, store: ResourceStore
) -> None:
    await fill(service, "HJ0007", range(4))
    recall = await service.record_result("HJ0007", positive=False)
    assert recall.tasks == []
    assert recall.tube.outcome is PoolFinding.NEGATIVE
    assert recall.tube.closed_at is not None
    assert {member.state for member in recall.tube.members} == {MemberState.RELEASED}
    assert await all_of(store, "Task") == []
    for member in recall.tube.members:
        assert validate(member.specimen) == []


async def test_a_tube_made_up_without_a_barcode_gets_one(service: PoolingService) -> None:
    tube = await service.open_tube("x")
    assert tube.barcode.startswith("HJ")
    assert (await service.tube(tube.barcode)).specimen["id"] == tube.specimen["id"]


async def test_the_label_pdf_carries_the_barcode(service: PoolingService) -> None:
    pytest.importorskip("reportlab")
    await fill(service, "HJ0008", range(3))
    pdf = render_label(label_for(await service.close_tube("HJ0008"), service.clock()))
    assert pdf.startswith(b"%PDF")
    assert b"HJ0008" in pdf
    assert "居民".encode() not in pdf
