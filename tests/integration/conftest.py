"""Fixtures shared by the integration tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.fhir_api import Client, start_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    """The whole hub app on a loopback port: embedded bus, SQLite store in ``tmp_path``."""
    client = await start_api(tmp_path)
    yield client
    await client.close()
