"""Fever-clinic reporting (S6, 发热门诊数据报送) as the hub sees it: built from
``JIANHU_FEVER__*``, each night the day before's fever-clinic visits (the clinics of
``JIANHU_FEVER__CLINICS``) extracted with the same report set as influenza (the visits,
discharges, summaries, deaths, medication and lab records), reshaped to the fever-clinic
layout (``fever-layout.json``), and the day's fever-clinic counts (``fever-counts.json``,
counted like the S1 indicators). History by ``jianhu report backfill fever``; a strict
simulator by ``jianhu simulate fever``."""

import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

from adapters.epidemic.daily import range_values
from adapters.epidemic.indicators import parse as parse_catalogue
from adapters.framework.backfill import backfill_days, requested_range, single_days
from adapters.framework.delivery import Courier
from adapters.framework.plugin import (
    AdapterJob,
    AdapterPlugin,
    AdapterServices,
    BackfillDone,
    BackfillRequest,
)
from adapters.framework.row_platform import RowAdapter, RowPlatformConfig, Tally
from adapters.surveillance.cases import Case, judge_fever
from adapters.surveillance.layout import layout
from adapters.surveillance.layout import parse as parse_layout
from adapters.surveillance.period import Period
from adapters.surveillance.platform import (
    adapter_for,
    days_to_report,
    layout_simulator,
    report_day,
)
from adapters.surveillance.report import CaseFinder, deliver
from adapters.surveillance.rules import CaseRules, case_rules
from hub.base import site_files
from hub.base.logs import log_event
from hub.schedule import parse_schedule
from store.resources import ResourceStore

log = logging.getLogger(__name__)
ADAPTER = "fever"
LAYOUT, COUNTS = "fever-layout.json", "fever-counts.json"
DAILY = "fever-daily"


class FeverConfig(RowPlatformConfig):
    path: str = "/frmz/upload"
    clinics: tuple[str, ...] = ("FRMZ", "发热门诊")  # the fever clinics' codes or names
    backfill_since: date = date(2025, 10, 1)


def build_adapter(config: FeverConfig) -> RowAdapter:
    return adapter_for(ADAPTER, config, layout(LAYOUT))


def fever_finder(clinics: tuple[str, ...]) -> CaseFinder:
    def find(period: Period, rules: CaseRules) -> list[Case]:
        found = []
        for encounter_id, encounter in period.encounters.items():
            case = judge_fever(encounter, period.conditions.get(encounter_id, []), clinics)
            if case is not None:
                found.append(case)
        return sorted(found, key=lambda case: case.id)

    return find


async def report_fever_day(
    store: ResourceStore, courier: Courier, adapter: RowAdapter, day: date, tally: Tally
) -> Tally:
    config: FeverConfig = adapter.config
    finder = fever_finder(config.clinics)
    await report_day(
        store, courier, adapter, case_rules(), layout(LAYOUT), day, finder, False, tally
    )
    catalogue = parse_catalogue(site_files.read_json("adapters.fever", f"data/{COUNTS}"))
    values = (await range_values(store, catalogue, day, day))[day]
    whole = {column: int(v) if float(v).is_integer() else v for column, v in values.items()}
    counts = {"record_id": day.isoformat(), "day": day.isoformat(), **whole}
    return await deliver(courier, ADAPTER, config, layout(LAYOUT), {"counts": [counts]}, tally)


def _adapter(hub: AdapterServices) -> RowAdapter:
    adapter = hub.courier.adapters[ADAPTER]
    assert isinstance(adapter, RowAdapter)
    return adapter


async def report_yesterday(hub: AdapterServices) -> None:
    adapter, tally = _adapter(hub), Tally()
    days = days_to_report(await hub.last_success(DAILY), datetime.now(UTC))
    for day in days:
        await report_fever_day(hub.resources, hub.courier, adapter, day, tally)
    log_event(log, "fever-reported", days=len(days), outcome=str(tally))


async def run_backfill(request: BackfillRequest) -> BackfillDone:
    config: FeverConfig = request.config
    wanted = requested_range(request.since, request.until, config.backfill_since)
    adapter = request.courier.adapters[ADAPTER]
    assert isinstance(adapter, RowAdapter)

    async def one_day(first: date, last: date) -> AsyncIterator[tuple[date, list[str]]]:
        tally = await report_fever_day(request.resources, request.courier, adapter, first, Tally())
        yield first, [o for o, n in tally.counts.items() for _ in range(n)]

    tally = await backfill_days(
        request.jobs,
        "fever-backfill",
        wanted,
        single_days,
        one_day,
        request.progress("fever-backfill", "days"),
        request.restart,
    )
    return BackfillDone(f"{wanted.days} days {wanted.detail}: {tally}", tally.complete)


PLUGIN = AdapterPlugin(
    name=ADAPTER,
    settings=FeverConfig,
    build=build_adapter,
    jobs=(AdapterJob(DAILY, parse_schedule("30 2 * * *"), report_yesterday, catch_up=True),),
    simulator=lambda app_id, org_code: layout_simulator(
        org_code,
        FeverConfig(organisation=org_code, transport="http", base_url="http://simulated"),
        layout(LAYOUT),
    ),
    site_files={LAYOUT: parse_layout, COUNTS: parse_catalogue},
    backfill=run_backfill,
)
