"""Influenza surveillance (S5, 流感医疗服务监测) as the hub sees it: built from
``JIANHU_FLU__*`` (a ``RowPlatformConfig``: the front-end database or an HTTP address), each
night the day before extracted by the case rules (``flu-rules.json``) and sent in the layout
(``flu-layout.json``): outpatient, emergency and in-hospital cases, discharged cases, discharge
summaries, deaths, every medication and lab record of the cases, and the ILI counts of the
monitored clinics; every Monday the week before's ILI summary (due by Monday 24:00). History by
``jianhu report backfill flu``; a strict simulator by ``jianhu simulate flu``."""

import logging
from datetime import UTC, date, datetime, timedelta

from adapters.framework.backfill import requested_range
from adapters.framework.plugin import (
    AdapterJob,
    AdapterPlugin,
    AdapterServices,
    BackfillDone,
    BackfillRequest,
)
from adapters.framework.row_platform import RowAdapter, RowPlatformConfig, Tally
from adapters.surveillance.cases import find_cases
from adapters.surveillance.layout import layout
from adapters.surveillance.layout import parse as parse_layout
from adapters.surveillance.platform import (
    adapter_for,
    backfill_record_days,
    days_to_report,
    ili_week,
    last_week,
    layout_simulator,
    report_day,
)
from adapters.surveillance.report import deliver
from adapters.surveillance.rules import FILE as RULES_FILE
from adapters.surveillance.rules import case_rules
from adapters.surveillance.rules import parse as parse_rules
from hub.base.logs import log_event
from hub.schedule import parse_schedule

log = logging.getLogger(__name__)
ADAPTER = "flu"
LAYOUT = "flu-layout.json"
DAILY, WEEKLY = "flu-daily", "flu-weekly"


class FluConfig(RowPlatformConfig):
    path: str = "/lgjc/upload"
    backfill_since: date = date(2025, 10, 1)  # the season the hospital starts reporting from


def build_adapter(config: FluConfig) -> RowAdapter:
    return adapter_for(ADAPTER, config, layout(LAYOUT))


def _adapter(hub: AdapterServices) -> RowAdapter:
    adapter = hub.courier.adapters[ADAPTER]
    assert isinstance(adapter, RowAdapter)
    return adapter


async def report_yesterday(hub: AdapterServices) -> None:
    """Each night: the days since the last run (the day before, after an outage the missed ones)."""
    adapter, tally = _adapter(hub), Tally()
    days = days_to_report(await hub.last_success(DAILY), datetime.now(UTC))
    for day in days:
        await report_day(
            hub.resources,
            hub.courier,
            adapter,
            case_rules(),
            layout(LAYOUT),
            day,
            find_cases,
            True,
            tally,
        )
    log_event(log, "flu-reported", days=len(days), outcome=str(tally))


async def report_last_week(hub: AdapterServices) -> None:
    """Each Monday: the ILI summary of the week before, per clinic and age band."""
    adapter = _adapter(hub)
    monday = last_week()
    rows = await ili_week(hub.resources, case_rules(), monday)
    tally = await deliver(hub.courier, ADAPTER, adapter.config, layout(LAYOUT), {"ili_week": rows})
    log_event(log, "flu-week-reported", week=monday.isoformat(), outcome=str(tally))


async def run_backfill(request: BackfillRequest) -> BackfillDone:
    """The range's days, then the ILI summary of every whole week (Monday to Sunday) in it."""
    config: FluConfig = request.config
    wanted = requested_range(request.since, request.until, config.backfill_since)
    adapter = request.courier.adapters[ADAPTER]
    assert isinstance(adapter, RowAdapter)
    tally = await backfill_record_days(
        request.resources,
        request.courier,
        request.jobs,
        adapter,
        case_rules(),
        layout(LAYOUT),
        find_cases,
        True,
        "flu-backfill",
        wanted,
        request.progress("flu-backfill", "days"),
        request.restart,
    )
    monday = wanted.since + timedelta(days=-wanted.since.weekday() % 7)
    while monday + timedelta(days=6) <= wanted.until:
        rows = await ili_week(request.resources, case_rules(), monday)
        await deliver(request.courier, ADAPTER, config, layout(LAYOUT), {"ili_week": rows}, tally)
        monday += timedelta(days=7)
    return BackfillDone(f"{wanted.days} days {wanted.detail}: {tally}", tally.complete)


PLUGIN = AdapterPlugin(
    name=ADAPTER,
    settings=FluConfig,
    build=build_adapter,
    jobs=(
        AdapterJob(DAILY, parse_schedule("0 2 * * *"), report_yesterday, catch_up=True),
        AdapterJob(WEEKLY, parse_schedule("0 6 * * 1"), report_last_week, catch_up=True),
    ),
    simulator=lambda app_id, org_code: layout_simulator(
        org_code,
        FluConfig(organisation=org_code, transport="http", base_url="http://simulated"),
        layout(LAYOUT),
    ),
    site_files={RULES_FILE: parse_rules, LAYOUT: parse_layout},
    backfill=run_backfill,
)
