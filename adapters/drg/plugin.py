"""The city DRG platform (S7) as the hub sees it: built from ``JIANHU_DRG__*``, reporting
finished stays every five minutes and asking for the platform's feedback each morning, with a
strict simulator (``jianhu simulate drg``)."""

from datetime import UTC, datetime, timedelta

import click

from adapters.drg.config import DrgConfig
from adapters.drg.discharges import QUIET, Reported, report_changed
from adapters.drg.feedback import ask_feedback
from adapters.drg.fields import parse as drg_fields
from adapters.drg.interfaces import build_adapter
from adapters.drg.simulator import create_app
from adapters.framework.delivery import Courier
from adapters.framework.plugin import AdapterJob, AdapterPlugin, AdapterServices
from hub.base.hospital_time import HOSPITAL, parse_given
from hub.schedule import Every, parse_schedule

DISCHARGES_JOB = "drg-discharges"
FIRST_LOOKBACK = timedelta(days=7)  # a new deployment reports the last week's stays


async def report_discharges(hub: AdapterServices) -> None:
    """Finished inpatient stays that changed since the last run go to the platform."""
    now = datetime.now(UTC)
    since = await hub.last_success(DISCHARGES_JOB) or now - FIRST_LOOKBACK
    await report_changed(hub.resources, hub.courier, since, now)


async def ask_yesterdays_feedback(hub: AdapterServices) -> None:
    """Each morning: what the platform found in yesterday's discharges."""
    await ask_feedback(hub.courier, datetime.now(HOSPITAL).date() - timedelta(days=1))


@click.group("drg")
def commands() -> None:
    """The city DRG platform: report stays now instead of at the next scheduled run."""


@commands.command("report")
@click.option(
    "--since",
    default=None,
    help="Stays changed since this time (hospital time unless it has an offset); "
    "default: the last week.",
)
@click.option(
    "--quiet-minutes",
    type=click.IntRange(0, 24 * 60),
    default=int(QUIET.total_seconds() // 60),
    show_default=True,
    help="Leave out stays changed more recently than this (still being recorded).",
)
def report_now(since: str | None, quiet_minutes: int) -> None:
    """Report the finished stays that changed since SINCE; the same content is never sent
    twice, so running this beside the hub's own schedule is safe."""
    # here, not at the top: the CLI's helpers reach the runtime, which imports the registry
    # that lists this plugin
    from hub.cli.common import open_store, run_async, settings_or_exit

    settings = settings_or_exit()
    config = settings.section("drg")
    if config is None:
        raise click.UsageError("the DRG platform is not configured (JIANHU_DRG__BASE_URL)")
    now = datetime.now(UTC)
    start = parse_given("since", since) if since else now - FIRST_LOOKBACK

    async def work() -> list[Reported]:
        async with open_store(settings) as store:
            courier = Courier(store.ledger, {"drg": build_adapter(config)})
            quiet = timedelta(minutes=quiet_minutes)
            return await report_changed(store.resources, courier, start, now, quiet)

    reported = run_async(work)
    if not reported:
        click.echo("no finished stay to report")
    for done in reported:
        statuses = " ".join(f"{name}={status}" for name, status in done.statuses.items())
        click.echo(f"Encounter/{done.encounter}\t{statuses}")


PLUGIN = AdapterPlugin(
    name="drg",
    settings=DrgConfig,
    build=build_adapter,
    jobs=(
        AdapterJob(DISCHARGES_JOB, Every(timedelta(minutes=5)), report_discharges, catch_up=True),
        AdapterJob("drg-feedback", parse_schedule("0 6 * * *"), ask_yesterdays_feedback),
    ),
    simulator=lambda app_id, org_code: create_app(app_id=app_id, org_code=org_code),
    site_files={"frontpage_fields.json": drg_fields},
    commands=commands,
)
