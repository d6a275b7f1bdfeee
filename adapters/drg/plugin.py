"""The city DRG platform (S7) as the hub sees it: built from ``JIANHU_DRG__*``, reporting
finished stays every five minutes and asking for the platform's feedback each morning, with a
strict simulator (``jianhu simulate drg``)."""

from datetime import UTC, datetime, timedelta

from adapters.drg.config import DrgConfig
from adapters.drg.discharges import report_changed
from adapters.drg.feedback import ask_feedback
from adapters.drg.fields import parse as drg_fields
from adapters.drg.interfaces import build_adapter
from adapters.drg.simulator import create_app
from adapters.framework.plugin import AdapterJob, AdapterPlugin, AdapterServices
from hub.base.hospital_time import HOSPITAL
from hub.schedule import Every, parse_schedule

DISCHARGES_JOB = "drg-discharges"
FIRST_LOOKBACK = timedelta(days=7)  # a new deployment reports the last week's stays


async def report_discharges(hub: AdapterServices) -> None:
    """Finished inpatient stays that changed since the last run go to the platform."""
    now = datetime.now(UTC)
    since = await hub.last_run(DISCHARGES_JOB) or now - FIRST_LOOKBACK
    await report_changed(hub.resources, hub.courier, since, now)


async def ask_yesterdays_feedback(hub: AdapterServices) -> None:
    """Each morning: what the platform found in yesterday's discharges."""
    await ask_feedback(hub.courier, datetime.now(HOSPITAL).date() - timedelta(days=1))


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
)
