"""The ``jianhu`` command against a real bus: dead letters listed, shown and redriven."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from hub.base.errors import PermanentError
from hub.base.metrics import HubMetrics
from hub.bus.base import Bus, Delivery
from hub.bus.settings import BusSettings
from hub.bus.topology import INBOUND, QueueSpec
from hub.cli.main import main
from hub.runtime import make_bus
from hub.settings import load_settings
from tests.conftest import _delete_queues
from tests.integration.test_bus_contract import envelope


@pytest.fixture(params=["embedded", "rabbit"])
def env(request: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    amqp_url = request.getfixturevalue("broker").url if request.param == "rabbit" else ""
    queue = f"t{uuid.uuid4().hex[:10]}"
    yield {"JIANHU_DATA_DIR": str(tmp_path), "JIANHU_AMQP_URL": amqp_url, "QUEUE": queue}
    if amqp_url:
        asyncio.run(_delete_queues(amqp_url, [queue]))


async def _kill_messages(env: dict[str, str], queue: str, count: int) -> list[str]:
    """Put ``count`` messages in the queue's dead letters through a handler that rejects."""
    settings = load_settings(
        data_dir=env["JIANHU_DATA_DIR"], amqp_url=env["JIANHU_AMQP_URL"], bus=BusSettings()
    )
    bus: Bus = make_bus(settings, HubMetrics())
    await bus.start()
    await bus.declare(QueueSpec(queue, INBOUND, (f"{queue}.#",)))
    sent = [envelope(n) for n in range(count)]
    await bus.publish_many([(item, f"{queue}.x") for item in sent])

    async def reject(_: Delivery) -> None:
        raise PermanentError("no mapping for this sender")

    await bus.consume(queue, reject)
    for _ in range(200):
        if len(await bus.dead_letters(queue)) == count:
            break
        await asyncio.sleep(0.05)
    await bus.close()
    return [item.id for item in sent]


def test_dlq_list_show_and_redrive(env: dict[str, str]) -> None:
    queue = env["QUEUE"]
    ids = asyncio.run(_kill_messages(env, queue, 2))
    runner = CliRunner()
    listed = runner.invoke(main, ["dlq", "list", queue], env=env)
    assert listed.exit_code == 0, listed.output
    rows = orjson.loads(listed.output)
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert rows[0]["error"] == "no mapping for this sender"

    shown = runner.invoke(main, ["dlq", "show", queue, ids[0]], env=env)
    assert orjson.loads(shown.output)["envelope"]["id"] == ids[0]

    refused = runner.invoke(main, ["dlq", "redrive", queue], env=env)
    assert refused.exit_code == 2
    assert "--all" in refused.output

    one = runner.invoke(main, ["dlq", "redrive", queue, "--id", ids[0]], env=env)
    assert one.output.strip() == "redriven: 1"
    left = orjson.loads(runner.invoke(main, ["dlq", "list", queue], env=env).output)
    assert [row["id"] for row in left] == [ids[1]]
    rest = runner.invoke(main, ["dlq", "redrive", queue, "--all"], env=env)
    assert rest.output.strip() == "redriven: 1"


def test_unknown_queue_and_bad_settings_give_clear_errors(env: dict[str, str]) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["dlq", "list", "no-such-queue-anywhere"], env=env)
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
    bad = runner.invoke(main, ["dlq", "list", "q"], env=env | {"JIANHU_HTTP_PORT": "x"})
    assert bad.exit_code == 2
    assert "JIANHU_HTTP_PORT" in bad.output


def test_routes_prints_the_table() -> None:
    result = CliRunner().invoke(main, ["routes"])
    assert result.exit_code == 0
    assert result.output.strip()
