"""The city's epidemic-prevention platform (S1) as the hub sees it: built from
``JIANHU_EPIDEMIC__*``, the current day (and every past day a change touched) counted and sent
every ten minutes, the history back-filled by ``jianhu report backfill epidemic``, with a strict
simulator (``jianhu simulate epidemic``) and its indicator catalogue as a site table."""

import logging
from datetime import UTC, datetime, timedelta

from adapters.epidemic.backfill import WORK, backfill
from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.indicators import FILE, catalogue
from adapters.epidemic.indicators import parse as parse_catalogue
from adapters.epidemic.platform import ADAPTER, build_adapter
from adapters.epidemic.reporting import report_days, touched_days
from adapters.epidemic.simulator import create_app
from adapters.framework.backfill import requested_range
from adapters.framework.plugin import (
    AdapterJob,
    AdapterPlugin,
    AdapterServices,
    BackfillDone,
    BackfillRequest,
)
from adapters.framework.row_platform import RowAdapter
from hub.base.hospital_time import HOSPITAL
from hub.base.logs import log_event
from hub.schedule import Every

log = logging.getLogger(__name__)
JOB = "epidemic-indicators"
EVERY = timedelta(minutes=10)  # the platform wants data no older than 15 minutes
OVERLAP = timedelta(minutes=1)  # changes committed while the last run began are looked at again


async def report_indicators(hub: AdapterServices) -> None:
    """Today's row, and the rows of the past days that changes since the last run touched."""
    adapter = hub.courier.adapters[ADAPTER]
    assert isinstance(adapter, RowAdapter)
    config: EpidemicConfig = adapter.config
    now = datetime.now(UTC)
    today = now.astimezone(HOSPITAL).date()
    days = {today}
    last = await hub.last_success(JOB)
    if last is not None:
        days.add(min(today, last.astimezone(HOSPITAL).date()))  # the day the last run saw
        days |= await touched_days(hub.resources, last - OVERLAP, now, config.backfill_since, today)
    tally = await report_days(hub.resources, hub.courier, config, catalogue(), days)
    log_event(log, "epidemic-indicators-reported", days=len(days), outcome=str(tally))


async def run_backfill(request: BackfillRequest) -> BackfillDone:
    config: EpidemicConfig = request.config
    wanted = requested_range(request.since, request.until, config.backfill_since)
    tally = await backfill(
        request.resources,
        request.courier,
        request.jobs,
        config,
        catalogue(),
        wanted,
        request.progress(WORK, "days"),
        restart=request.restart,
    )
    return BackfillDone(f"{wanted.days} days {wanted.detail}: {tally}", tally.complete)


PLUGIN = AdapterPlugin(
    name=ADAPTER,
    settings=EpidemicConfig,
    build=build_adapter,
    jobs=(AdapterJob(JOB, Every(EVERY), report_indicators),),
    simulator=lambda app_id, org_code: create_app(org_code),
    site_files={FILE: parse_catalogue},
    backfill=run_backfill,
)
