"""``jianhu report``: the regulators' reports run by hand. ``backfill NAME`` delivers the
history of a platform (``jianhu report backfill epidemic --since 2020-01-01``): resumable after
an interruption, idempotent when run twice, with a progress bar on a terminal, progress lines in
the log otherwise, and the same progress in the ops API (``GET /ops/progress``)."""

import sys
from datetime import datetime

import click

from adapters.framework.delivery import Courier
from adapters.framework.plugin import BackfillDone, BackfillRequest
from adapters.registry import PLUGINS, configured_adapters, plugin
from hub.base.logs import configure_logging
from hub.base.progress import ProgressReporter
from hub.cli.common import open_store, run_async, settings_or_exit


@click.group("report")
def report() -> None:
    """The regulators' reports, run by hand."""


@report.command("backfill")
@click.argument("platform", type=click.Choice([p.name for p in PLUGINS if p.backfill]))
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The first day (yyyy-MM-dd); default: the platform's configured start.",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The last day; default: yesterday.",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start again at --since instead of after the day an interrupted run stopped.",
)
def backfill(platform: str, since: datetime | None, until: datetime | None, restart: bool) -> None:
    """Count and deliver every day of the range to PLATFORM; days already delivered with the
    same content are not sent again, changed ones go as corrections."""
    settings = settings_or_exit()
    configure_logging(settings.log_level)
    config = settings.section(platform)
    if config is None:
        raise click.UsageError(f"{platform} is not configured (JIANHU_{platform.upper()}__*)")
    run = plugin(platform).backfill
    assert run is not None  # the choice lists only adapters with a back-fill

    async def work() -> BackfillDone:
        async with open_store(settings) as store:
            adapters = configured_adapters(settings)
            courier = Courier(store.ledger, adapters)
            try:
                return await run(
                    BackfillRequest(
                        resources=store.resources,
                        courier=courier,
                        jobs=store.jobs,
                        config=config,
                        since=since.date() if since else None,
                        until=until.date() if until else None,
                        restart=restart,
                        progress=lambda work, unit: ProgressReporter.for_command(
                            store.jobs.save_progress, work, unit
                        ),
                    )
                )
            finally:
                for adapter in adapters.values():
                    await adapter.transport.close()

    try:
        done: BackfillDone = run_async(work)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(done.summary)
    if not done.complete:
        click.echo(
            "not every row is at the platform: the waiting ones are sent again by the running "
            "hub's ledger, the held ones need a person (jianhu ledger list --adapter "
            f"{platform} --status failed,rejected)",
            err=True,
        )
        sys.exit(1)
