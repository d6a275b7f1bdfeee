"""The ``jianhu`` command: run the hub, check the site configuration, print the routes, run a
simulator; the operations commands (queues, dead letters, the message archive, the ledger) are
in ``hub/cli/operations.py``. This entry point is the only place that configures logging.
"""

import asyncio
import contextlib
import errno
import logging
import re
import resource
import sys
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import uvloop
from aiohttp import web

from adapters.registry import PLUGINS, plugin
from hub.base.errors import JianhuError
from hub.base.logs import configure_logging
from hub.cli.common import settings_or_exit
from hub.cli.destinations import destinations
from hub.cli.operations import dlq, ledger, messages, queues, trace
from hub.cli.reports import report
from hub.settings import Settings
from hub.site_config import overrides, problems
from routes.table import default_table, render

log = logging.getLogger("hub.cli")


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

    settings = settings_or_exit(reads_data=False)
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
    folder = folder or settings_or_exit(reads_data=False).config_dir
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


for command in (queues, dlq, messages, ledger, trace, destinations, report):
    main.add_command(command)
for adapter in PLUGINS:  # each adapter's own commands: ``jianhu drg report``
    if adapter.commands is not None:
        main.add_command(adapter.commands)


if __name__ == "__main__":
    main()
