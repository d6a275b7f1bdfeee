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

from hub.errors import ResourceGoneError, ResourceNotFoundError, VersionConflictError
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
