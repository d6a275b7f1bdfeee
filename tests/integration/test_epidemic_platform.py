"""The epidemic indicators (S1) delivered as the platform sees them: pushed over HTTP to the
strict simulator on a real socket, and written into a real front-end database (PostgreSQL,
MariaDB; SQLite for the update-then-insert path), each row recorded in the ledger; a changed
past day corrected by upsert or by revocation and a new row; a row our field table refuses
held with the fields named."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.indicators import catalogue, parse
from adapters.epidemic.platform import ADAPTER, DAY_ROW, REVOCATION, build_adapter
from adapters.epidemic.reporting import report_days, send_day, touched_days
from adapters.epidemic.simulator import PLATFORM, create_app, day_rows
from adapters.framework.delivery import Courier
from adapters.framework.front_database import FrontDatabase
from adapters.framework.row_platform import HELD, SENT, UNCHANGED, WAITING
from hub.base.hospital_time import HOSPITAL
from store.ledger import ACCEPTED, CANCELLED, REJECTED, LedgerQuery
from store.sqlite import SqliteStore
from tests.integration.test_epidemic_indicators import DAY, SEASON, visit
from tests.integration.test_front_database import front  # noqa: F401 (the databases)

ORG = "47000594-X"
COLUMNS = catalogue().columns


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "hub.sqlite3")
    await opened.open()
    for resource in SEASON:
        await opened.resources.update(resource)
    yield opened
    await opened.close()


async def simulated(corrections: str) -> tuple[TestServer, EpidemicConfig]:
    platform = EpidemicConfig(
        organisation=ORG, transport="http", base_url="http://x", corrections=corrections
    )
    server = TestServer(create_app(ORG, platform))
    await server.start_server()
    config = platform.model_copy(update={"base_url": str(server.make_url(""))})
    return server, config


def live(server: TestServer) -> dict[str, Any]:
    return day_rows(server.app[PLATFORM])


@pytest.mark.parametrize("corrections", ["upsert", "revoke"])
async def test_a_day_is_pushed_and_a_late_change_corrects_it(
    store: SqliteStore, corrections: str
) -> None:
    server, config = await simulated(corrections)
    courier = Courier(store.ledger, {ADAPTER: build_adapter(config)})
    try:
        tally = await report_days(store.resources, courier, config, catalogue(), [DAY])
        assert tally.counts[SENT] == 1
        row = live(server)[DAY.isoformat()]
        assert (row["FRMZRC"], row["ZYRS"], row["YLJGDM"], row["XGBZ"]) == (2, 2, ORG, "0")
        stamped = datetime.strptime(row["TBRQ"], "%Y-%m-%d %H:%M:%S")  # when it was sent
        assert abs(stamped - datetime.now(HOSPITAL).replace(tzinfo=None)) < timedelta(minutes=1)

        again = await report_days(store.resources, courier, config, catalogue(), [DAY])
        assert again.counts[UNCHANGED] == 1  # the same row is not sent twice
        assert server.app[PLATFORM].received == 1

        late = visit(10, "AMB", "2026-12-03T16:00:00+08:00", at="FRMZ")
        await store.resources.update(late)
        corrected = await report_days(store.resources, courier, config, catalogue(), [DAY])
        assert corrected.counts[SENT] == 1
        assert live(server)[DAY.isoformat()]["FRMZRC"] == 3
        history = await store.ledger.search(LedgerQuery(adapter=ADAPTER, limit=10))
        kinds = sorted((s.interface, s.kind, s.status) for s in history)
        if corrections == "upsert":
            assert kinds == [(DAY_ROW, "upload", ACCEPTED), (DAY_ROW, "upload", ACCEPTED)]
            assert server.app[PLATFORM].revoked == 0
        else:  # the accepted row revoked (XGBZ 1) first, then the new one
            assert kinds == [
                (DAY_ROW, "upload", ACCEPTED),
                (DAY_ROW, "upload", CANCELLED),
                (REVOCATION, "cancel", ACCEPTED),
            ]
            assert server.app[PLATFORM].revoked == 1
            (revocation,) = [s for s in history if s.kind == "cancel"]
            sent = orjson.loads(revocation.attempts[-1].request)["rows"][0]
            assert (sent["XGBZ"], sent["FRMZRC"]) == ("1", 2)
    finally:
        await courier.adapters[ADAPTER].transport.close()
        await server.close()


async def test_the_platform_refusing_a_row_leaves_it_rejected_in_the_ledger(
    store: SqliteStore,
) -> None:
    server, config = await simulated("upsert")
    courier = Courier(store.ledger, {ADAPTER: build_adapter(config)})
    try:
        server.app[PLATFORM].org_code = "ANOTHER"  # the platform knows the hospital otherwise
        tally = await report_days(store.resources, courier, config, catalogue(), [DAY])
        assert tally.counts[HELD] == 1
        (held,) = await store.ledger.search(LedgerQuery(adapter=ADAPTER))
        assert held.status == REJECTED
        assert "E102" in held.error
        assert live(server) == {}
    finally:
        await courier.adapters[ADAPTER].transport.close()
        await server.close()


async def test_a_row_our_field_table_refuses_is_held_naming_the_field(
    store: SqliteStore,
) -> None:
    server, config = await simulated("upsert")
    courier = Courier(store.ledger, {ADAPTER: build_adapter(config)})
    broken = parse(
        {
            "indicators": [
                {
                    "code": "MZRC",
                    "name": "门诊人次",
                    "column": "MZRC",
                    "kind": "visits",
                    "classes": ["AMB"],
                },
                {
                    "code": "KFCWS",
                    "name": "开放床位数",
                    "column": "KFCWS",
                    "kind": "constant",
                    "value": -5,
                },
            ]
        }
    )
    try:
        outcome = await send_day(courier, config, broken, DAY, {"MZRC": 2, "KFCWS": -5})
        assert outcome == HELD
        (held,) = await store.ledger.search(LedgerQuery(adapter=ADAPTER))
        assert held.status == REJECTED
        assert held.error.startswith("not sent: KFCWS (开放床位数): below 0")
        assert held.attempts == ()  # never sent
        assert server.app[PLATFORM].received == 0
    finally:
        await courier.adapters[ADAPTER].transport.close()
        await server.close()


def indicator_table(metadata: sa.MetaData, keyed: bool) -> sa.Table:
    """The platform's table in its front-end database: keyed by institution and day where it
    is upserted, a plain growing table where a day is corrected by revocation."""
    columns = [sa.Column(c, sa.Integer) for c in COLUMNS]
    if not keyed:
        columns.insert(0, sa.Column("ID", sa.Integer, primary_key=True, autoincrement=True))
    return sa.Table(
        "TB_YQFK_MRZB",
        metadata,
        *columns,
        sa.Column("YLJGDM", sa.String(33), primary_key=keyed),
        sa.Column("YWRQ", sa.Date, primary_key=keyed),
        sa.Column("TBRQ", sa.DateTime),
        sa.Column("XGBZ", sa.String(2)),
    )


@pytest.mark.parametrize("corrections", ["upsert", "revoke"])
async def test_rows_reach_the_front_end_database_and_are_corrected(
    store: SqliteStore,
    front: FrontDatabase,  # noqa: F811
    corrections: str,
) -> None:
    engine = sa.create_engine(front.url)
    metadata = sa.MetaData()
    table = indicator_table(metadata, keyed=corrections == "upsert")
    metadata.drop_all(engine, [table])
    metadata.create_all(engine, [table])
    config = EpidemicConfig(
        organisation=ORG, transport="database", database_url=front.url, corrections=corrections
    )
    courier = Courier(store.ledger, {ADAPTER: build_adapter(config)})
    try:
        await report_days(store.resources, courier, config, catalogue(), [DAY])
        await store.resources.update(visit(10, "AMB", "2026-12-03T16:00:00+08:00", at="FRMZ"))
        await report_days(store.resources, courier, config, catalogue(), [DAY])
        rows = await front.rows(table.name)
        seen = sorted((r["XGBZ"], r["FRMZRC"], r["MZRC"]) for r in rows)
        if corrections == "upsert":
            assert seen == [("0", 3, 3)]
        else:  # the first row, its revocation, the corrected row
            assert seen == [("0", 2, 2), ("0", 3, 3), ("1", 2, 2)]
        assert all(r["YWRQ"] == DAY and r["YLJGDM"] == ORG for r in rows)
        assert all(r["TBRQ"] is not None for r in rows)
        statuses = [s.status for s in await store.ledger.search(LedgerQuery(adapter=ADAPTER))]
        assert ACCEPTED in statuses
        assert REJECTED not in statuses
    finally:
        await courier.adapters[ADAPTER].transport.close()
        metadata.drop_all(engine, [table])
        engine.dispose()


async def test_a_front_end_database_that_refuses_leaves_the_row_rejected(
    store: SqliteStore, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'front.sqlite3'}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    sa.Table("TB_YQFK_MRZB", metadata, sa.Column("YLJGDM", sa.String(33), primary_key=True))
    metadata.create_all(engine)  # a table without the platform's columns
    engine.dispose()
    config = EpidemicConfig(organisation=ORG, transport="database", database_url=url)
    courier = Courier(store.ledger, {ADAPTER: build_adapter(config)})
    try:
        tally = await report_days(store.resources, courier, config, catalogue(), [DAY])
        assert tally.counts[HELD] == 1
        (held,) = await store.ledger.search(LedgerQuery(adapter=ADAPTER))
        assert held.status == REJECTED
        assert "has no column" in held.error
    finally:
        await courier.adapters[ADAPTER].transport.close()


async def test_a_revoking_platform_gets_the_accepted_row_revoked_after_a_held_one(
    store: SqliteStore,
) -> None:
    """A accepted, B held by our checks, then C: A is revoked before C goes, not left there."""
    server, config = await simulated("revoke")
    courier = Courier(store.ledger, {ADAPTER: build_adapter(config)})
    good = catalogue()
    try:
        assert await send_day(courier, config, good, DAY, dict.fromkeys(COLUMNS, 1.0)) == SENT
        broken = dict.fromkeys(COLUMNS, 1.0) | {"MZRC": -1.0}
        assert await send_day(courier, config, good, DAY, broken) == HELD
        assert await send_day(courier, config, good, DAY, dict.fromkeys(COLUMNS, 2.0)) == SENT
        assert live(server)[DAY.isoformat()]["MZRC"] == 2
        assert server.app[PLATFORM].revoked == 1
    finally:
        await courier.adapters[ADAPTER].transport.close()
        await server.close()


async def test_rows_a_silent_platform_did_not_take_are_waiting(store: SqliteStore) -> None:
    server, config = await simulated("upsert")
    await server.close()  # nobody answers at the address any more
    courier = Courier(store.ledger, {ADAPTER: build_adapter(config)})
    try:
        tally = await report_days(store.resources, courier, config, catalogue(), [DAY])
        assert tally.counts == {SENT: 0, UNCHANGED: 0, WAITING: 1, HELD: 0}
        assert not tally.complete
        again = await report_days(store.resources, courier, config, catalogue(), [DAY])
        assert again.counts[WAITING] == 1  # still not there: not "unchanged"
    finally:
        await courier.adapters[ADAPTER].transport.close()


async def test_a_change_that_moves_or_deletes_touches_the_day_it_left(
    store: SqliteStore,
) -> None:
    since = datetime.now(UTC)  # after the season was written
    moved = visit(1, "AMB", "2026-12-02T08:10:00+08:00", "2026-12-02T09:00:00+08:00", at="FRMZ")
    await store.resources.update(moved)  # it was on the 3rd
    await store.resources.delete("Observation", "obs-1")  # a test of the 3rd
    until = datetime.now(UTC) + timedelta(seconds=1)
    days = await touched_days(store.resources, since, until, date(2020, 1, 1), date(2026, 12, 4))
    assert days == {date(2026, 12, 2), DAY}
