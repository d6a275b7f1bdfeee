"""The SQLite store keeps its search index in step with the current version of each resource."""

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from hub.errors import VersionConflictError
from store.sqlite import SqliteStore
from tests.fixtures.examples import ID_CARD, PATIENT


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "jianhu.sqlite3")
    await opened.open()
    yield opened
    await opened.close()


def committed(store: SqliteStore) -> sqlite3.Connection:
    """A connection of the test's own: it sees what the store committed."""
    return sqlite3.connect(store.path)


def tokens(store: SqliteStore, id: str, param: str) -> list[tuple[str | None, str]]:
    return (
        committed(store)
        .execute(
            "SELECT system, code FROM ix_token WHERE type='Patient' AND id=? AND param=?",
            (id, param),
        )
        .fetchall()
    )


async def test_index_follows_create_update_and_delete(store: SqliteStore) -> None:
    created = await store.resources.create({k: v for k, v in PATIENT.items() if k != "id"})
    assert tokens(store, created.id, "gender") == [(None, "male")]
    assert (ID_CARD, "330602199001011231") in tokens(store, created.id, "identifier")

    body = orjson.loads(created.body or b"{}")
    await store.resources.update({**body, "gender": "female"})
    assert tokens(store, created.id, "gender") == [(None, "female")]

    with pytest.raises(VersionConflictError):  # a refused write leaves the index as it was
        await store.resources.update({**body, "gender": "other"}, if_match=1)
    assert tokens(store, created.id, "gender") == [(None, "female")]

    await store.resources.delete("Patient", created.id)
    assert tokens(store, created.id, "gender") == []
    assert tokens(store, created.id, "identifier") == []


async def test_last_updated_is_indexed_from_the_stored_meta(store: SqliteStore) -> None:
    created = await store.resources.create({"resourceType": "Patient", "gender": "male"})
    (lo, hi) = (
        committed(store)
        .execute("SELECT lo, hi FROM ix_date WHERE id=? AND param='_lastUpdated'", (created.id,))
        .fetchone()
    )
    stamp = orjson.loads(created.body or b"{}")["meta"]["lastUpdated"]
    assert lo == hi == stamp
