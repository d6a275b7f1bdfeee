"""The store backends the contract tests run on: SQLite always; MongoDB whenever a server is
reachable (``JIANHU_TEST_MONGO_URL``, or Docker through testcontainers), otherwise skipped
with the reason. MongoDB cannot be installed on the CI machines, so it is never required."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from store.base import Store
from store.resources import ResourceStore
from store.sqlite import SqliteStore

BACKENDS = ["sqlite", "mongo"]


def mongo_url() -> str | None:
    if url := os.environ.get("JIANHU_TEST_MONGO_URL"):
        return url
    return _docker_mongo()


_container: dict[str, str | None] = {}


def _docker_mongo() -> str | None:
    """A MongoDB replica set in Docker, started once per test session, if Docker works."""
    if "url" in _container:
        return _container["url"]
    url = None
    try:
        from testcontainers.community.mongodb import MongoDbContainer

        container = MongoDbContainer("mongo:7").with_command("--replSet rs0 --bind_ip_all")
        container.start()
        host, port = container.get_container_host_ip(), container.get_exposed_port(27017)
        container.exec("mongosh --quiet --eval 'rs.initiate()'")
        url = f"mongodb://{host}:{port}/?directConnection=true"
    except Exception:  # no Docker engine here: the MongoDB tests skip
        url = None
    _container["url"] = url
    return url


@asynccontextmanager
async def open_backend(kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    """The whole store of a backend (resources, archive, ledger, jobs), on a fresh database."""
    if kind == "sqlite":
        store = SqliteStore(tmp_path / "jianhu.sqlite3")
        await store.open()
        yield store
        await store.close()
        return
    url = mongo_url()
    if url is None:
        pytest.skip("no MongoDB server: set JIANHU_TEST_MONGO_URL or run Docker")
    from store.mongo import MongoStore

    mongo = MongoStore(url, database=f"jianhu_test_{uuid.uuid4().hex[:12]}")
    await mongo.open()
    try:
        yield mongo
    finally:
        await mongo.db.client.drop_database(mongo.db.name)
        await mongo.close()


@asynccontextmanager
async def open_store(kind: str, tmp_path: Path) -> AsyncIterator[ResourceStore]:
    async with open_backend(kind, tmp_path) as store:
        yield store.resources
