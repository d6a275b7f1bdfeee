"""The influenza and fever-clinic platforms as the hub runs them: the nightly job reports the
day before (and after an outage the missed days), and ``jianhu report backfill flu`` delivers a
range of days with its progress."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from adapters.fever.plugin import ADAPTER as FEVER
from adapters.fever.plugin import LAYOUT as FEVER_LAYOUT
from adapters.fever.plugin import FeverConfig
from adapters.fever.plugin import build_adapter as build_fever
from adapters.fever.plugin import report_yesterday as fever_yesterday
from adapters.flu.plugin import ADAPTER as FLU
from adapters.flu.plugin import LAYOUT as FLU_LAYOUT
from adapters.flu.plugin import FluConfig, report_yesterday, run_backfill
from adapters.flu.plugin import build_adapter as build_flu
from adapters.framework.delivery import Courier
from adapters.framework.plugin import BackfillRequest
from adapters.framework.simulated_tables import PLATFORM
from adapters.surveillance.layout import layout
from adapters.surveillance.platform import layout_simulator
from adapters.surveillance.season import Season, generate
from hub.base.hospital_time import HOSPITAL
from hub.base.progress import FINISHED, ProgressReporter
from store.ledger import DEAD, FAILED, REJECTED, LedgerQuery
from store.plan import Write, WriteMode
from store.resources import ResourceStore
from store.sqlite import SqliteStore

ORG = "47000594-X"
TODAY = datetime.now(HOSPITAL).date()
FIRST = TODAY - timedelta(days=3)


@pytest.fixture(scope="module")
def season() -> Season:
    return generate(FIRST, days=3, visits_a_day=30, seed=11)


@pytest.fixture
async def store(tmp_path: Path, season: Season) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "hub.sqlite3")
    await opened.open()
    for i in range(0, len(season.resources), 500):
        batch = season.resources[i : i + 500]
        await opened.resources.apply([Write.of(WriteMode.REPLACE, r) for r in batch])
    yield opened
    await opened.close()


@dataclass
class Services:
    resources: ResourceStore
    courier: Courier
    last: datetime | None

    async def last_success(self, job: str) -> datetime | None:
        return self.last


def began_on(season: Season, day: str) -> set[str]:
    return {
        r["id"]
        for r in season.resources
        if r["resourceType"] == "Encounter" and r["period"]["start"].startswith(day)
    }


async def test_the_nightly_runs_report_the_days_since_the_last(
    store: SqliteStore, season: Season
) -> None:
    flu = TestServer(
        layout_simulator(
            ORG,
            FluConfig(organisation=ORG, transport="http", base_url="http://x"),
            layout(FLU_LAYOUT),
        )
    )
    fever = TestServer(
        layout_simulator(
            ORG,
            FeverConfig(organisation=ORG, transport="http", base_url="http://x"),
            layout(FEVER_LAYOUT),
        )
    )
    await flu.start_server()
    await fever.start_server()
    adapters = {
        FLU: build_flu(
            FluConfig(organisation=ORG, transport="http", base_url=str(flu.make_url("")))
        ),
        FEVER: build_fever(
            FeverConfig(organisation=ORG, transport="http", base_url=str(fever.make_url("")))
        ),
    }
    courier = Courier(store.ledger, adapters)
    try:
        yesterday = (TODAY - timedelta(days=1)).isoformat()
        await report_yesterday(Services(store.resources, courier, None))  # first run
        cases = {r["JLID"] for r in flu.app[PLATFORM].rows("TB_LG_MJZBL")}
        assert season.expected.cases & began_on(season, yesterday) <= cases
        # and the stays in hospital that day (在院病例): a dose of an antiviral that day
        assert all(c.startswith("s") for c in cases - began_on(season, yesterday))
        assert not await store.ledger.search(LedgerQuery(statuses=(REJECTED, FAILED, DEAD)))

        two_days_ago = datetime.now(UTC) - timedelta(days=2)  # the hub was down a day
        await report_yesterday(Services(store.resources, courier, two_days_ago))
        earlier = (TODAY - timedelta(days=2)).isoformat()
        cases = {r["JLID"] for r in flu.app[PLATFORM].rows("TB_LG_MJZBL")}
        assert season.expected.cases & began_on(season, earlier) <= cases

        await fever_yesterday(Services(store.resources, courier, None))
        (counts,) = fever.app[PLATFORM].rows("TB_FR_MRTJ")
        assert counts["FRMZRC"] == season.expected.fever_visits[yesterday]
    finally:
        for adapter in adapters.values():
            await adapter.transport.close()
        await flu.close()
        await fever.close()


async def test_the_flu_backfill_delivers_each_day_with_its_progress(
    store: SqliteStore, season: Season
) -> None:
    config = FluConfig(organisation=ORG, transport="http", base_url="http://x")
    flu = TestServer(layout_simulator(ORG, config, layout(FLU_LAYOUT)))
    await flu.start_server()
    adapter = build_flu(config.model_copy(update={"base_url": str(flu.make_url(""))}))
    courier = Courier(store.ledger, {FLU: adapter})
    try:
        done = await run_backfill(
            BackfillRequest(
                resources=store.resources,
                courier=courier,
                jobs=store.jobs,
                config=config,
                since=FIRST,
                until=TODAY - timedelta(days=1),
                restart=False,
                progress=lambda work, unit: ProgressReporter(store.jobs.save_progress, work, unit),
            )
        )
        assert done.summary.startswith(f"3 days {FIRST.isoformat()}..")
        assert done.complete, done.summary
        (progress,) = await store.jobs.progress("flu-backfill")
        assert (progress.state, progress.done, progress.total) == (FINISHED, 3, 3)
        cases = {r["JLID"] for r in flu.app[PLATFORM].rows("TB_LG_MJZBL")}
        assert season.expected.cases - cases <= {  # stays still in hospital today may wait
            c for c in season.expected.cases if c.startswith("s")
        }
        assert {c for c in season.expected.cases if c.startswith("v")} <= cases
    finally:
        await adapter.transport.close()
        await flu.close()
