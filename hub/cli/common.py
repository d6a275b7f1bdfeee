"""What the ``jianhu`` commands share: the settings (or one clear line and exit code 2), an
event loop that turns the hub's errors into a message, the bus and the store opened for one
command, and JSON output."""

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import click
import orjson

from hub.base.errors import ConfigurationError, JianhuError
from hub.base.metrics import HubMetrics
from hub.bus.base import Bus
from hub.runtime import make_bus, make_store
from hub.settings import Settings, load_settings
from routes.table import default_table
from store.base import Store


def settings_or_exit(reads_data: bool = True) -> Settings:
    """The settings, or one clear message and exit code 2. ``reads_data``: the command reads
    the hub's embedded files, so their folder must exist (a command run from another folder
    would otherwise create an empty ``./data`` there and answer from it)."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    embedded = not (settings.amqp_url.get_secret_value() and settings.mongo_url.get_secret_value())
    if reads_data and embedded and not settings.data_dir.is_dir():
        click.echo(
            f"error: no hub data in {settings.data_dir.resolve()}: start the hub there with "
            "`jianhu run`, or set JIANHU_DATA_DIR to the folder it uses",
            err=True,
        )
        sys.exit(2)
    return settings


def run_async(work: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except JianhuError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@asynccontextmanager
async def open_bus(settings: Settings) -> AsyncIterator[Bus]:
    bus = make_bus(settings, HubMetrics())
    await bus.start()
    try:
        for spec in default_table().specs():
            await bus.declare(spec)
        yield bus
    finally:
        await bus.close(grace_s=0)


def print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    store = make_store(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
