"""The influenza (S5) and fever-clinic (S6) reports as their platforms see them: a generated
season extracted and sent through the ledger, to the strict layout simulators over HTTP and
into the platforms' tables in a real front-end database (PostgreSQL, MariaDB; SQLite); sent
once, ILI summed for the week, a record that breaks its field table held naming the field."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from adapters.fever.plugin import ADAPTER as FEVER
from adapters.fever.plugin import LAYOUT as FEVER_LAYOUT
from adapters.fever.plugin import FeverConfig, report_fever_day
from adapters.fever.plugin import build_adapter as build_fever
from adapters.flu.plugin import ADAPTER as FLU
from adapters.flu.plugin import LAYOUT as FLU_LAYOUT
from adapters.flu.plugin import FluConfig, run_backfill
from adapters.flu.plugin import build_adapter as build_flu
from adapters.framework.delivery import Courier
from adapters.framework.front_database import FrontDatabase
from adapters.framework.plugin import BackfillRequest
from adapters.framework.row_platform import HELD, SENT, UNCHANGED, Tally
from adapters.framework.simulated_tables import PLATFORM, TablePlatform
from adapters.surveillance.cases import find_cases
from adapters.surveillance.layout import TableLayout, layout
from adapters.surveillance.platform import ili_week, layout_simulator, report_day
from adapters.surveillance.report import deliver
from adapters.surveillance.rules import case_rules
from adapters.surveillance.season import Season, generate
from hub.base.progress import ProgressReporter
from store.ledger import REJECTED, LedgerQuery
from store.plan import Write, WriteMode
from store.sqlite import SqliteStore
from tests.integration.test_front_database import front  # noqa: F401 (the databases)

ORG = "47000594-X"
FIRST = date(2026, 11, 2)  # a Monday


@pytest.fixture(scope="module")
def season() -> Season:
    return generate(FIRST, days=3, visits_a_day=40)


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
class Platform:
    server: TestServer

    @property
    def state(self) -> TablePlatform:
        return self.server.app[PLATFORM]

    def rows(self, table: str) -> list[dict[str, object]]:
        return self.state.rows(table)


async def simulated(config: FluConfig | FeverConfig, file: str) -> tuple[Platform, str]:
    server = TestServer(layout_simulator(ORG, config, layout(file)))
    await server.start_server()
    return Platform(server), str(server.make_url(""))


async def test_a_flu_day_reaches_the_platform_once(store: SqliteStore, season: Season) -> None:
    base = FluConfig(organisation=ORG, transport="http", base_url="http://x")
    platform, url = await simulated(base, FLU_LAYOUT)
    adapter = build_flu(base.model_copy(update={"base_url": url}))
    courier = Courier(store.ledger, {FLU: adapter})
    try:
        tally = await report_day(
            store.resources,
            courier,
            adapter,
            case_rules(),
            layout(FLU_LAYOUT),
            FIRST,
            find_cases,
            True,
        )
        assert tally.counts[HELD] == 0
        cases = {row["JLID"] for row in platform.rows("TB_LG_MJZBL")}
        began_that_day = {
            r["id"]
            for r in season.resources
            if r["resourceType"] == "Encounter" and r["period"]["start"].startswith("2026-11-02")
        }
        assert cases == season.expected.cases & began_that_day
        ili = {(r["ZSDM"], r["NLZDM"]): r for r in platform.rows("TB_LG_ILI")}
        expected = {
            (k[1], k[2]): v for k, v in season.expected.monitored.items() if k[0] == "2026-11-02"
        }
        assert {k: r["JZZS"] for k, r in ili.items()} == expected
        assert all(r["YLJGDM"] == ORG and r["XGBZ"] == "0" for r in platform.rows("TB_LG_JYJL"))
        sent = platform.state.received
        again = await report_day(
            store.resources,
            courier,
            adapter,
            case_rules(),
            layout(FLU_LAYOUT),
            FIRST,
            find_cases,
            True,
        )
        assert again.counts[SENT] == 0
        assert again.counts[UNCHANGED] == tally.counts[SENT]
        assert platform.state.received == sent

        week = await ili_week(store.resources, case_rules(), FIRST)
        weekly = await deliver(courier, FLU, adapter.config, layout(FLU_LAYOUT), {"ili_week": week})
        assert weekly.counts[SENT] == len(week) > 0
        summed = {(r["ZSDM"], r["NLZDM"]): r["JZZS"] for r in platform.rows("TB_LG_ILI_ZB")}
        by_clinic_band: dict[tuple[str, str], int] = {}
        for (_, clinic, band), visits in season.expected.monitored.items():
            by_clinic_band[(clinic, band)] = by_clinic_band.get((clinic, band), 0) + visits
        assert summed == by_clinic_band
    finally:
        await adapter.transport.close()
        await platform.server.close()


async def test_a_record_that_breaks_its_field_table_is_held(store: SqliteStore) -> None:
    base = FluConfig(organisation=ORG, transport="http", base_url="http://x")
    platform, url = await simulated(base, FLU_LAYOUT)
    adapter = build_flu(base.model_copy(update={"base_url": url}))
    courier = Courier(store.ledger, {FLU: adapter})
    record = {
        "record_id": "v-nameless",
        "visit_number": "MZ1",
        "name": "",
        "sex": "7",
        "visit_type": "1",
        "visit_time": "2026-11-02 09:00:00",
        "grounds": "1",
    }
    try:
        tally = await deliver(courier, FLU, adapter.config, layout(FLU_LAYOUT), {"case": [record]})
        assert tally.counts[HELD] == 1
        (held,) = await store.ledger.search(LedgerQuery(adapter=FLU))
        assert held.status == REJECTED
        assert "XM (姓名): required" in held.error
        assert "XBDM (性别代码): '7' is not in its value domain" in held.error
        assert platform.state.received == 0
    finally:
        await adapter.transport.close()
        await platform.server.close()


async def test_the_fever_clinic_day_and_its_counts(store: SqliteStore, season: Season) -> None:
    base = FeverConfig(organisation=ORG, transport="http", base_url="http://x")
    platform, url = await simulated(base, FEVER_LAYOUT)
    adapter = build_fever(base.model_copy(update={"base_url": url}))
    courier = Courier(store.ledger, {FEVER: adapter})
    try:
        tally = await report_fever_day(store.resources, courier, adapter, FIRST, Tally())
        assert tally.counts[HELD] == 0
        visits = platform.rows("TB_FR_JZJL")
        assert len(visits) == season.expected.fever_visits["2026-11-02"]
        assert all(r["KSDM"] == "FRMZ" and r["SBYJ"] == "5" for r in visits)
        assert all(isinstance(r["TW"], float) for r in visits)  # the fever layout wants it
        (counts,) = platform.rows("TB_FR_MRTJ")
        assert counts["FRMZRC"] == season.expected.fever_visits["2026-11-02"]
        assert counts["YWRQ"] == "2026-11-02"
    finally:
        await adapter.transport.close()
        await platform.server.close()


def platform_tables(metadata: sa.MetaData, tables: list[TableLayout]) -> list[sa.Table]:
    """The platform's tables as its front-end database holds them (the hub never makes them)."""
    kinds: dict[str, Any] = {
        "integer": sa.Integer,
        "number": sa.Numeric(10, 2),
        "date": sa.Date,
        "datetime": sa.DateTime,
    }
    made = []
    for table in tables:
        columns: list[sa.Column[Any]] = [
            sa.Column(
                c.column,
                kinds.get(c.type, sa.String(c.length or 100)),
                primary_key=c.column in table.keys,
            )
            for c in table.columns
        ]
        made.append(sa.Table(table.table, metadata, *columns, sa.Column("TBRQ", sa.DateTime)))
    return made


async def test_flu_records_reach_the_front_end_database(
    store: SqliteStore,
    season: Season,
    front: FrontDatabase,  # noqa: F811
) -> None:
    engine = sa.create_engine(front.url)
    metadata = sa.MetaData()
    tables = platform_tables(metadata, list(layout(FLU_LAYOUT).tables.values()))
    metadata.drop_all(engine, tables)
    metadata.create_all(engine, tables)
    config = FluConfig(organisation=ORG, transport="database", database_url=front.url)
    adapter = build_flu(config)
    courier = Courier(store.ledger, {FLU: adapter})
    try:
        last = FIRST + timedelta(days=9)  # the stays have ended: discharges and deaths
        for offset in range((last - FIRST).days + 1):
            await report_day(
                store.resources,
                courier,
                adapter,
                case_rules(),
                layout(FLU_LAYOUT),
                FIRST + timedelta(days=offset),
                find_cases,
                True,
            )
        discharged = {r["JLID"] for r in await front.rows("TB_LG_CYBL")}
        assert discharged == season.expected.discharges
        deaths = await front.rows("TB_LG_SWJL")
        assert {r["JLID"] for r in deaths} == season.expected.deaths
        assert len(await front.rows("TB_LG_CYXJ")) == season.expected.summaries
        assert len(await front.rows("TB_LG_YYJL")) == season.expected.medications
        cases = await front.rows("TB_LG_MJZBL")
        assert {r["JLID"] for r in cases} == season.expected.cases
        assert all(r["TBRQ"] is not None and len(r["ZJHM"]) == 18 for r in cases)
    finally:
        await adapter.transport.close()
        metadata.drop_all(engine, tables)
        engine.dispose()


async def test_fever_records_and_counts_reach_the_front_end_database(
    store: SqliteStore,
    season: Season,
    front: FrontDatabase,  # noqa: F811
) -> None:
    engine = sa.create_engine(front.url)
    metadata = sa.MetaData()
    tables = platform_tables(metadata, list(layout(FEVER_LAYOUT).tables.values()))
    metadata.drop_all(engine, tables)
    metadata.create_all(engine, tables)
    config = FeverConfig(
        organisation=ORG, transport="database", database_url=front.url, corrections="upsert"
    )
    adapter = build_fever(config)
    courier = Courier(store.ledger, {FEVER: adapter})
    try:
        tally = await report_fever_day(store.resources, courier, adapter, FIRST, Tally())
        assert tally.counts[HELD] == 0
        visits = await front.rows("TB_FR_JZJL")
        assert len(visits) == season.expected.fever_visits["2026-11-02"]
        (counts,) = await front.rows("TB_FR_MRTJ")
        assert counts["YWRQ"] == FIRST
        assert counts["FRMZRC"] == season.expected.fever_visits["2026-11-02"]
    finally:
        await adapter.transport.close()
        metadata.drop_all(engine, tables)
        engine.dispose()


async def test_the_flu_backfill_sends_the_days_and_each_whole_weeks_ili(
    store: SqliteStore, season: Season
) -> None:
    base = FluConfig(organisation=ORG, transport="http", base_url="http://x")
    platform, url = await simulated(base, FLU_LAYOUT)
    config = base.model_copy(update={"base_url": url})
    adapter = build_flu(config)
    courier = Courier(store.ledger, {FLU: adapter})
    try:
        done = await run_backfill(
            BackfillRequest(
                resources=store.resources,
                courier=courier,
                jobs=store.jobs,
                config=config,
                since=FIRST,
                until=FIRST + timedelta(days=7),  # one whole week, and a day of the next
                restart=False,
                progress=lambda work, unit: ProgressReporter(store.jobs.save_progress, work, unit),
            )
        )
        assert done.complete, done.summary
        weeks = {r["ZKSRQ"] for r in platform.rows("TB_LG_ILI_ZB")}
        assert weeks == {FIRST.isoformat()}
        visits = [int(str(r["JZZS"])) for r in platform.rows("TB_LG_ILI_ZB")]
        assert sum(visits) == sum(season.expected.monitored.values())
    finally:
        await adapter.transport.close()
        await platform.server.close()
