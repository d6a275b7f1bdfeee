"""The ``jianhu`` command: run the hub, print the routes, inspect and redrive dead letters,
search, replay and purge the HL7 v2 message archive.
This entry point is the only place that configures logging.
"""

import asyncio
import contextlib
import errno
import logging
import re
import resource
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import orjson
import uvloop
from aiohttp import web

from adapters.framework.delivery import Courier
from adapters.framework.views import detail as ledger_detail
from adapters.framework.views import ledger_query
from adapters.framework.views import summary as ledger_summary
from adapters.registry import PLUGINS, configured_adapters, plugin
from hub.base.errors import ConfigurationError, JianhuError
from hub.base.hospital_time import given
from hub.base.logs import configure_logging
from hub.base.metrics import HubMetrics
from hub.bus.base import Bus
from hub.hl7v2.publishing import Publisher
from hub.hl7v2.replay import archive_query, detail, replay, summary
from hub.runtime import make_bus, make_store
from hub.settings import Settings, load_settings
from hub.site_config import overrides, problems
from hub.web.ops import dead_letter_detail, dead_letter_summary
from routes.table import default_table, render
from store.base import Store
from store.listing import MAX_LISTED

log = logging.getLogger("hub.cli")


def _settings(reads_data: bool = True) -> Settings:
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
@click.version_option(package_name="jianhu", prog_name="jianhu")
def main() -> None:
    """Jianhu (鉴湖): the hospital's HL7 v2 / FHIR interoperability hub."""


def _raise_open_file_limit() -> None:
    """Every connection is a file: take the hard limit (often far above the soft 1,024), so the
    listeners' connection caps, not the process's files, bound how many senders connect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@main.command()
@click.option("--no-consume", is_flag=True, help="Serve HTTP but take nothing from the queues.")
def run(no_consume: bool) -> None:
    """Run the hub: HTTP API and queue consumers in one event loop (Ctrl-C stops it gracefully)."""
    from aiohttp import web

    from hub.runtime import Runtime
    from hub.web.app import make_app

    settings = _settings(reads_data=False)
    configure_logging(settings.log_level)
    if settings.config_dir is not None and (found := problems(settings.config_dir)):
        click.echo("invalid site configuration (JIANHU_CONFIG_DIR):", err=True)
        for line in found:
            click.echo(f"  {line}", err=True)
        sys.exit(2)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        click.echo(f"error: cannot use the data folder {settings.data_dir}: {exc}", err=True)
        sys.exit(2)
    _raise_open_file_limit()
    # The store's writer threads and the worker threads of big messages run Python between
    # their SQLite calls: the event loop takes the interpreter back after 1 ms, not 5, so an
    # ACK waits less behind them.
    sys.setswitchinterval(0.001)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # about 10% more messages per core
    if not settings.api_keys and not _jwt_configured(settings):
        log.warning(
            "no API key and no JWT key is configured: every call to the HTTP APIs will be "
            "refused (401); set JIANHU_API_KEYS (key:role,...) or JIANHU_JWT__HS256_SECRET",
            extra={"event": "no_credentials"},
        )
    app = make_app(Runtime(settings), consume=not no_consume)
    try:
        web.run_app(
            app,
            host=settings.http_host,
            port=settings.http_port,
            shutdown_timeout=settings.shutdown_grace_s,
            print=lambda _: click.echo(started_line(settings), err=True),  # once listening
            access_log=None,
        )
    except JianhuError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        click.echo(f"error: {_cannot_listen(exc)}", err=True)
        sys.exit(2)


def _jwt_configured(settings: Settings) -> bool:
    jwt = settings.jwt
    return bool(jwt.hs256_secret.get_secret_value() or jwt.rs256_public_key.get_secret_value())


def started_line(settings: Settings) -> str:
    """What a person starting the hub wants to see first: where it listens, what it uses."""
    mllp = ", ".join(
        f"{settings.http_host}:{listener.port or settings.mllp_port}"
        for listener in settings.hl7.listeners
    )
    data = settings.data_dir.resolve()
    amqp, mongo = settings.amqp_url.get_secret_value(), settings.mongo_url.get_secret_value()
    bus = f"RabbitMQ {_without_password(amqp)}" if amqp else f"embedded ({data / 'bus.sqlite3'})"
    store = (
        f"MongoDB {_without_password(mongo)}" if mongo else f"SQLite ({data / 'jianhu.sqlite3'})"
    )
    site = ""
    if settings.config_dir is not None:
        site = f"; site tables from {settings.config_dir.resolve()}: "
        site += ", ".join(overrides(settings.config_dir)) or "none"
    return (
        f"jianhu {version('jianhu')} listening: HTTP http://{settings.http_host}:"
        f"{settings.http_port} (FHIR at /fhir), MLLP {mllp or 'none'}; store {store}; bus {bus}"
        f"{site}"
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _cannot_listen(exc: OSError) -> str:
    """One line out of the event loop's ``error while attempting to bind on address
    ('0.0.0.0', 8080): address already in use``, with the settings that move the port."""
    found = re.search(r"\('([^']*)', (\d+)\)\W*(.*)$", str(exc))
    where, why = (f"{found[1]}:{found[2]}", found[3]) if found else ("", str(exc))
    return (
        f"cannot listen on {where or 'its address'}: {why if found else exc.strerror or why}; set "
        "JIANHU_HTTP_PORT, JIANHU_MLLP_PORT or JIANHU_HTTP_HOST"
    )


@main.group()
def config() -> None:
    """The site's configuration."""


@config.command("check")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
def config_check(folder: Path | None) -> None:
    """Check a folder of site tables (default: JIANHU_CONFIG_DIR) without starting the hub."""
    folder = folder or _settings(reads_data=False).config_dir
    if folder is None:
        click.echo("error: name a folder, or set JIANHU_CONFIG_DIR", err=True)
        sys.exit(2)
    found = problems(folder)
    if found:
        for line in found:
            click.echo(line, err=True)
        sys.exit(2)
    click.echo(f"ok: {folder}: " + (", ".join(overrides(folder)) or "no tables overridden"))


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
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_LISTED))
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


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    store = make_store(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _filters(function: Callable[..., Any]) -> Callable[..., Any]:
    """The archive filters shared by ``messages list`` and ``messages replay``."""
    for option in reversed(
        [
            click.option("--sender", help="MSH-3 sending application"),
            click.option("--type", "message_type", help="MSH-9 code^event, e.g. ORU^R01"),
            click.option(
                "--status",
                help="received, published, stored, unmapped, failed, rejected, stranded",
            ),
            click.option("--control-id", help="MSH-10"),
            click.option("--patient", "patient_id", help="a patient identifier from PID-3"),
            click.option("--since", type=click.DateTime(), help="received at or after"),
            click.option("--until", type=click.DateTime(), help="received before"),
            click.option(
                "--limit", default=100, show_default=True, type=click.IntRange(1, MAX_LISTED)
            ),
        ]
    ):
        function = option(function)
    return function


def _local(moment: datetime | None) -> datetime | None:
    """Times typed at the console are the hospital's local time."""
    return given(moment) if moment is not None else None


@main.group()
def messages() -> None:
    """The HL7 v2 message archive: list, show, replay, purge."""


@messages.command("list")
@_filters
def messages_list(**filters: Any) -> None:
    """List archived messages (no content), oldest first."""
    settings = _settings()
    filters["since"], filters["until"] = _local(filters["since"]), _local(filters["until"])

    async def work() -> None:
        async with _store(settings) as store:
            _print_json([summary(m) for m in await store.archive.search(archive_query(**filters))])

    _run_async(work)


@messages.command("show")
@click.argument("message_id")
def messages_show(message_id: str) -> None:
    """Show one archived message with its text, ACK and the resources it produced."""
    settings = _settings()

    async def work() -> None:
        async with _store(settings) as store:
            _print_json(detail(await store.archive.get(message_id)))

    _run_async(work)


@messages.command("replay")
@click.option("--id", "ids", multiple=True, help="An archive id; repeat for several.")
@_filters
def messages_replay(ids: tuple[str, ...], **filters: Any) -> None:
    """Replay messages (by --id, or every one matching the filters) as new attempts."""
    chosen = {k: v for k, v in filters.items() if v is not None and k != "limit"}
    if bool(ids) == bool(chosen):
        raise click.UsageError("give either --id (one or more) or at least one filter")
    settings = _settings()
    filters["since"], filters["until"] = _local(filters["since"]), _local(filters["until"])

    async def work() -> int:
        async with _store(settings) as store, _bus(settings) as bus:
            if ids:
                found = [await store.archive.get(i) for i in ids]
            else:
                found = list(await store.archive.search(archive_query(**filters)))
            publisher = Publisher(bus, store.archive, settings.hl7.claim_grace_s)
            return await replay(publisher, found)

    click.echo(f"replayed: {_run_async(work)}")


@messages.command("purge")
@click.option("--type", "message_type", required=True, help="MSH-9 code^event")
@click.option("--before", type=click.DateTime(), required=True)
def messages_purge(message_type: str, before: datetime) -> None:
    """Delete (for good) the archived messages of a type received before a time."""
    settings = _settings()

    async def work() -> int:
        async with _store(settings) as store:
            return await store.archive.purge(message_type, _local(before) or before)

    click.echo(f"purged: {_run_async(work)}")


@main.group()
def ledger() -> None:
    """The outbound delivery ledger: list, show, retry, cancel, redrive."""


@ledger.command("list")
@click.option("--adapter", help="e.g. drg")
@click.option("--interface", help="e.g. baInfo")
@click.option("--key", help="the business key, e.g. 病案号-住院次数")
@click.option("--status", help="pending, sending, accepted, rejected, failed, dead, cancelled")
@click.option("--since", type=click.DateTime(), help="created at or after")
@click.option("--until", type=click.DateTime(), help="created before")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_LISTED))
def ledger_list(**filters: Any) -> None:
    """List submissions (no payload), newest first."""
    settings = _settings()
    filters["since"], filters["until"] = _local(filters["since"]), _local(filters["until"])
    query = ledger_query({k: v for k, v in filters.items() if v is not None})

    async def work() -> None:
        async with _store(settings) as store:
            _print_json([ledger_summary(s) for s in await store.ledger.search(query)])

    _run_async(work)


@ledger.command("show")
@click.argument("submission_id")
def ledger_show(submission_id: str) -> None:
    """One submission with its payload and every attempt (request and response)."""
    settings = _settings()

    async def work() -> None:
        async with _store(settings) as store:
            _print_json(ledger_detail(await store.ledger.get(submission_id)))

    _run_async(work)


def _delivery_command(action: str, submission_id: str) -> None:
    settings = _settings()

    async def work() -> None:
        async with _store(settings) as store:
            delivery = Courier(store.ledger, configured_adapters(settings))
            act = delivery.retry_now if action == "retry" else delivery.cancel
            try:
                done = await act(submission_id)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
            _print_json(ledger_summary(done))

    _run_async(work)


@ledger.command("retry")
@click.argument("submission_id")
def ledger_retry(submission_id: str) -> None:
    """Send a failed, dead or rejected submission again now."""
    _delivery_command("retry", submission_id)


@ledger.command("cancel")
@click.argument("submission_id")
def ledger_cancel(submission_id: str) -> None:
    """Withdraw an accepted upload at the receiver, or stop one not yet accepted."""
    _delivery_command("cancel", submission_id)


@ledger.command("redrive")
@click.argument("adapter")
def ledger_redrive(adapter: str) -> None:
    """Every dead submission of an adapter goes back to pending (the hub sends them)."""
    settings = _settings()

    async def work() -> int:
        async with _store(settings) as store:
            return await Courier(store.ledger, {}).redrive(adapter)

    click.echo(f"redriven: {_run_async(work)}")


@main.command()
@click.argument("system", type=click.Choice([p.name for p in PLUGINS if p.simulator]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9100, show_default=True)
@click.option("--app-id", default="SIM-APP-ID", show_default=True)
@click.option("--org-code", default="SIM-ORG-CODE", show_default=True)
def simulate(system: str, host: str, port: int, app_id: str, org_code: str) -> None:
    """Run the simulator of an external system, for dry runs (faults: POST /_faults)."""
    factory = plugin(system).simulator
    assert factory is not None  # the choice lists only adapters with a simulator
    click.echo(f"{system} simulator on http://{host}:{port}; faults at /_faults, state at /_state")
    web.run_app(factory(app_id, org_code), host=host, port=port, print=None)


if __name__ == "__main__":
    main()
