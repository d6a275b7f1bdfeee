"""The ``jianhu`` command: run the hub, print the routes, inspect and redrive dead letters.

This entry point is the only place that configures logging.
"""

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import click
import orjson
import uvloop

from hub.bus.base import Bus
from hub.errors import ConfigurationError, JianhuError
from hub.logs import configure_logging
from hub.metrics import HubMetrics
from hub.runtime import make_bus
from hub.settings import Settings, load_settings
from hub.web.ops import dead_letter_detail, dead_letter_summary
from routes.table import default_table, render


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def _run_async(work: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except JianhuError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@asynccontextmanager
async def _bus(settings: Settings) -> AsyncIterator[Bus]:
    bus = make_bus(settings, HubMetrics())
    await bus.start()
    try:
        for spec in default_table().specs():
            await bus.declare(spec)
        yield bus
    finally:
        await bus.close(grace_s=0)


def _print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@click.group()
def main() -> None:
    """Jianhu (鉴湖): the hospital's HL7 v2 / FHIR interoperability hub."""


@main.command()
@click.option("--no-consume", is_flag=True, help="Serve HTTP but take nothing from the queues.")
def run(no_consume: bool) -> None:
    """Run the hub: HTTP API and queue consumers in one event loop (Ctrl-C stops it gracefully)."""
    from aiohttp import web

    from hub.runtime import Runtime
    from hub.web.app import make_app

    settings = _settings()
    configure_logging(settings.log_level)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # about 10% more messages per core
    app = make_app(Runtime(settings), consume=not no_consume)
    try:
        web.run_app(
            app,
            host=settings.http_host,
            port=settings.http_port,
            shutdown_timeout=settings.shutdown_grace_s,
            print=None,
            access_log=None,
        )
    except JianhuError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@main.command()
def routes() -> None:
    """Print the routing table: queue, exchange, routing keys, handler."""
    click.echo(render(default_table()))


@main.command()
def queues() -> None:
    """Print each routed queue with its waiting and dead-lettered message counts."""
    settings = _settings()

    async def work() -> None:
        async with _bus(settings) as bus:
            for depth in await bus.depths():
                click.echo(f"{depth.queue}\tready={depth.ready}\tdead={depth.dead}")

    _run_async(work)


@main.group()
def dlq() -> None:
    """Dead letters: list, show one, redrive."""


@dlq.command("list")
@click.argument("queue")
@click.option("--limit", default=100, show_default=True)
def dlq_list(queue: str, limit: int) -> None:
    """List the dead letters of QUEUE (oldest first)."""
    settings = _settings()

    async def work() -> None:
        async with _bus(settings) as bus:
            _print_json([dead_letter_summary(d) for d in await bus.dead_letters(queue, limit)])

    _run_async(work)


@dlq.command("show")
@click.argument("queue")
@click.argument("message_id")
def dlq_show(queue: str, message_id: str) -> None:
    """Show one dead letter of QUEUE with its envelope and why it died."""
    settings = _settings()

    async def work() -> None:
        async with _bus(settings) as bus:
            _print_json(dead_letter_detail(await bus.dead_letter(queue, message_id)))

    _run_async(work)


@dlq.command("redrive")
@click.argument("queue")
@click.option("--id", "ids", multiple=True, help="A message id; repeat for several.")
@click.option("--all", "everything", is_flag=True, help="Redrive every dead letter of QUEUE.")
def dlq_redrive(queue: str, ids: tuple[str, ...], everything: bool) -> None:
    """Put dead letters of QUEUE back on it as fresh first attempts."""
    if bool(ids) == everything:
        raise click.UsageError("give either --id (one or more) or --all")
    settings = _settings()

    async def work() -> int:
        async with _bus(settings) as bus:
            return await bus.redrive(queue, list(ids) if ids else None)

    click.echo(f"redriven: {_run_async(work)}")


if __name__ == "__main__":
    main()
