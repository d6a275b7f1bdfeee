"""The resource-store contract: versions, history, optimistic locking and deletes.

Runs on every backend: SQLite always, MongoDB when a server is reachable.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.base.correlation import Origin, within
from hub.base.errors import ResourceGoneError, ResourceNotFoundError, VersionConflictError
from store.plan import Write, WriteMode
from store.resources import ResourceStore
from tests.stores import BACKENDS, open_store


@pytest.fixture(params=BACKENDS)
async def resources(request: Any, tmp_path: Path) -> AsyncIterator[ResourceStore]:
    async with open_store(request.param, tmp_path) as store:
        yield store


def patient(name: str = "张三", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "330602199001011231"}],
        "name": [{"text": name, "family": name[0], "given": [name[1:]]}],
        "gender": "male",
        **extra,
    }


def body(stored: Any) -> dict[str, Any]:
    return orjson.loads(stored.body)  # type: ignore[no-any-return]


async def test_create_assigns_id_version_and_last_updated(resources: ResourceStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    created = await resources.create(patient(meta={"tag": [{"code": "test"}]}))
    assert created.version == 1
    assert created.etag == 'W/"1"'
    assert created.last_updated >= before
    stored = body(created)
    assert stored["id"] == created.id
    assert stored["meta"]["versionId"] == "1"
    assert stored["meta"]["tag"] == [{"code": "test"}]  # other meta survives
    assert stored["name"][0]["text"] == "张三"
    again = await resources.read("Patient", created.id)
    assert again.body == created.body


async def test_ids_are_unique(resources: ResourceStore) -> None:
    ids = {(await resources.create(patient())).id for _ in range(20)}
    assert len(ids) == 20


async def test_update_makes_a_new_version_and_keeps_the_old(resources: ResourceStore) -> None:
    created = await resources.create(patient())
    updated = await resources.update({**body(created), "gender": "female"})
    assert not updated.created
    assert updated.version.version == 2
    assert body(await resources.read("Patient", created.id))["gender"] == "female"
    assert body(await resources.vread("Patient", created.id, 1))["gender"] == "male"
    with pytest.raises(ResourceNotFoundError):
        await resources.vread("Patient", created.id, 3)


async def test_update_as_create_with_a_client_id(resources: ResourceStore) -> None:
    result = await resources.update(patient(id="zhang-san"))
    assert result.created
    assert result.version.version == 1
    assert (await resources.read("Patient", "zhang-san")).version == 1


async def test_if_match_guards_against_lost_updates(resources: ResourceStore) -> None:
    created = await resources.create(patient())
    await resources.update({**body(created), "gender": "female"}, if_match=1)
    with pytest.raises(VersionConflictError):
        await resources.update({**body(created), "gender": "other"}, if_match=1)
    assert body(await resources.read("Patient", created.id))["gender"] == "female"
    with pytest.raises(VersionConflictError):
        await resources.delete("Patient", created.id, if_match=1)


async def test_delete_is_a_version_and_reads_say_gone(resources: ResourceStore) -> None:
    created = await resources.create(patient())
    deleted = await resources.delete("Patient", created.id)
    assert deleted is not None
    assert deleted.deleted
    assert deleted.version == 2
    with pytest.raises(ResourceGoneError):
        await resources.read("Patient", created.id)
    assert body(await resources.vread("Patient", created.id, 1))["id"] == created.id
    assert await resources.delete("Patient", created.id) is None  # deleting twice is fine
    revived = await resources.update(body(created))
    assert revived.created
    assert revived.version.version == 3


async def test_unknown_resources_are_not_found(resources: ResourceStore) -> None:
    with pytest.raises(ResourceNotFoundError):
        await resources.read("Patient", "nobody")
    assert await resources.delete("Patient", "nobody") is None


async def test_history_newest_first_with_a_stable_cursor(resources: ResourceStore) -> None:
    first = await resources.create(patient("李四"))
    await resources.update({**body(first), "gender": "female"})
    other = await resources.create({"resourceType": "Practitioner", "name": [{"text": "王医生"}]})
    await resources.delete("Patient", first.id)

    instance = (await resources.history("Patient", first.id)).items
    assert [v.version for v in instance] == [3, 2, 1]
    assert instance[0].deleted

    by_type = (await resources.history("Patient")).items
    assert {v.id for v in by_type} == {first.id}

    system = await resources.history(count=2)
    assert [(v.type, v.version) for v in system.items] == [("Patient", 3), ("Practitioner", 1)]
    assert system.next_cursor is not None
    rest = (await resources.history(count=10, cursor=system.next_cursor)).items
    assert [(v.type, v.id, v.version) for v in rest] == [
        ("Patient", first.id, 2),
        ("Patient", first.id, 1),
    ]
    assert other.id not in {v.id for v in rest}


async def test_history_since_filters_by_commit_time(resources: ResourceStore) -> None:
    old = await resources.create(patient())
    await asyncio.sleep(0.005)  # times are kept to the millisecond
    cut = datetime.now(UTC)
    await asyncio.sleep(0.005)
    await resources.update({**body(old), "gender": "female"})
    recent = (await resources.history("Patient", since=cut)).items
    assert [v.version for v in recent] == [2]


# --- plans: one message's or Bundle's writes, resolved by the store ---


async def events_of(resources: ResourceStore) -> list[str]:
    """The topics waiting for the relay, oldest first; then marked published."""
    pending = await resources.pending_events(1000)
    await resources.events_published(pending)
    return [f"{event.topic}:{event.id}/{event.version}" for event in pending]


async def test_an_unchanged_write_makes_no_version_no_index_change_and_no_event(
    resources: ResourceStore,
) -> None:
    created = await resources.update(patient(id="same"))
    await events_of(resources)
    again = await resources.update(patient(id="same"))  # what is stored already
    assert again.version.version == 1
    assert not again.changed
    assert await events_of(resources) == []
    stamped = {**body(created.version), "meta": {"versionId": "9", "lastUpdated": "2020"}}
    assert not (await resources.update(stamped)).changed  # the store's own meta is not content
    tagged = await resources.update({**patient(id="same"), "meta": {"tag": [{"code": "vip"}]}})
    assert tagged.changed  # other meta is content
    assert tagged.version.version == 2
    assert await events_of(resources) == ["fhir.Patient.updated:same/2"]
    page = await resources.history("Patient", "same")
    assert [v.version for v in page.items] == [2, 1]  # every real change, nothing else


async def test_the_modes_of_a_plan(resources: ResourceStore) -> None:
    await resources.apply([Write.of(WriteMode.REPLACE, patient(id="p", gender="male"))])
    written = await resources.apply(
        [
            Write.of(WriteMode.IF_ABSENT, patient("王五", id="p")),  # there: left as it is
            Write.of(WriteMode.MERGE, {"resourceType": "Patient", "id": "p", "gender": "female"}),
            Write.of(WriteMode.IF_ABSENT, patient("赵六", id="q")),  # absent: created
            Write.of(WriteMode.MERGE, {"resourceType": "Patient", "id": "r", "active": True}),
        ]
    )
    assert [w.changed for w in written] == [False, True, True, True]
    merged = body(await resources.read("Patient", "p"))
    assert (merged["gender"], merged["name"][0]["text"]) == ("female", "张三")
    assert body(await resources.read("Patient", "q"))["name"][0]["text"] == "赵六"
    assert body(await resources.read("Patient", "r"))["active"] is True
    await resources.delete("Patient", "q")
    (left,) = await resources.apply([Write.of(WriteMode.IF_ABSENT, patient(id="q"))])
    assert left.version is None  # deleted on purpose: context does not bring it back
    with pytest.raises(VersionConflictError):
        await resources.apply([Write.of(WriteMode.CREATE, patient(id="p"))])


async def test_writes_of_one_plan_see_each_other(resources: ResourceStore) -> None:
    first = {"resourceType": "Patient", "id": "s", "gender": "male"}
    second = {"resourceType": "Patient", "id": "s", "active": True}
    written = await resources.apply(
        [Write.of(WriteMode.MERGE, first), Write.of(WriteMode.MERGE, second, if_match=1)]
    )
    assert [w.version.version for w in written if w.version] == [1, 2]
    stored = body(await resources.read("Patient", "s"))
    assert (stored["gender"], stored["active"]) == ("male", True)


async def test_two_messages_touching_one_resource_at_once_both_land(
    resources: ResourceStore,
) -> None:
    """Two plans in flight together (in one commit group on SQLite) merging into one tube:
    neither fails, both contributions are kept."""
    specimen = {"resourceType": "Specimen", "id": "tube", "status": "available"}
    await resources.apply([Write.of(WriteMode.REPLACE, specimen)])
    received = {"resourceType": "Specimen", "id": "tube", "receivedTime": "2026-11-26T08:30:00Z"}
    noted = {"resourceType": "Specimen", "id": "tube", "note": [{"text": "溶血"}]}
    await asyncio.gather(
        resources.apply([Write.of(WriteMode.MERGE, received)]),
        resources.apply([Write.of(WriteMode.MERGE, noted)]),
    )
    stored = body(await resources.read("Specimen", "tube"))
    assert stored["receivedTime"] == "2026-11-26T08:30:00Z"
    assert stored["note"] == [{"text": "溶血"}]
    assert stored["meta"]["versionId"] == "3"


async def test_a_failing_write_fails_its_plan_only(resources: ResourceStore) -> None:
    good = [Write.of(WriteMode.REPLACE, patient(id=f"ok{n}")) for n in range(3)]
    bad = [
        Write.of(WriteMode.REPLACE, patient(id="never")),
        Write.of(WriteMode.REPLACE, patient(id="ok0"), if_match=7),
    ]
    results = await asyncio.gather(
        resources.apply(good[:1]),
        resources.apply(bad),
        resources.apply(good[1:]),
        return_exceptions=True,
    )
    assert isinstance(results[1], VersionConflictError)
    assert results[1].key == "Patient/ok0"
    for n in range(3):
        assert (await resources.read("Patient", f"ok{n}")).version == 1
    with pytest.raises(ResourceNotFoundError):
        await resources.read("Patient", "never")


async def test_versions_carry_their_origin_and_are_found_by_its_correlation_id(
    resources: ResourceStore,
) -> None:
    with within(Origin("msg-1", "LIS")):
        first = await resources.create(patient())
        await resources.update({**body(first), "gender": "female"})
        await resources.update({**body(first), "gender": "female"})  # unchanged: no version
    with within(Origin("req-2", "api-key:clinician")):
        again = await resources.update({**body(first), "gender": "female"})  # the same content
        await resources.delete("Patient", first.id)
    await resources.create(patient("李四"))  # no origin: nothing traced, meta.source as given

    assert body(first)["meta"]["source"] == "urn:jianhu:system:LIS#msg-1"
    assert not again.changed
    traced = [(v.version, v.deleted) for v in await resources.traced("msg-1", 10)]
    assert traced == [(1, False), (2, False)]
    assert [(v.version, v.deleted) for v in await resources.traced("req-2", 10)] == [(3, True)]
    assert len(await resources.traced("msg-1", 1)) == 1
    assert await resources.traced("nobody", 10) == []
    events = [e for e in await resources.pending_events(100) if e.id == first.id]
    assert [e.correlation for e in events] == ["msg-1", "msg-1", "req-2"]
