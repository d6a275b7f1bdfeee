"""The epidemic indicators (S1) of one day, counted on the clinical store (SQLite) from visits,
stays and tests written as the normalizer writes them, and the day's row upserted into the
platform's table of a real front-end database (and corrected there)."""

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.epidemic.daily import Bookkeeping, day_row, day_values
from adapters.epidemic.indicators import catalogue, parse
from adapters.framework.front_database import FrontDatabase
from store.resources import ResourceStore
from store.sqlite import SqliteStore
from tests.integration.test_front_database import front  # noqa: F401 (the databases)

DAY = date(2026, 12, 3)
LOINC = "http://loinc.org"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ResourceStore]:
    opened = SqliteStore(tmp_path / "hub.sqlite3")
    await opened.open()
    yield opened.resources
    await opened.close()


def visit(n: int, cls: str, start: str, end: str | None = None, at: str = "") -> dict[str, Any]:
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": f"enc-{n}",
        "status": "finished" if end else "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "period": {"start": start, **({"end": end} if end else {})},
    }
    if at:
        encounter["location"] = [{"location": {"display": at, "identifier": {"value": at}}}]
    return encounter


def swab(n: int, code: str, taken: str, result: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{n}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": taken,
        "valueCodeableConcept": {"text": result},
        "interpretation": [{"coding": [{"code": "POS" if result == "阳性" else "NEG"}]}],
    }


SEASON = [
    visit(1, "AMB", "2026-12-03T08:10:00+08:00", "2026-12-03T09:00:00+08:00", at="FRMZ"),
    visit(2, "EMER", "2026-12-03T23:50:00+08:00", "2026-12-04T00:30:00+08:00", at="FRMZ"),
    visit(3, "AMB", "2026-12-03T00:05:00+08:00", "2026-12-03T00:40:00+08:00", at="HXNK"),
    visit(4, "AMB", "2026-12-02T23:59:00+08:00", "2026-12-03T00:20:00+08:00", at="FRMZ"),  # 2nd
    visit(5, "IMP", "2026-12-03T10:00:00+08:00"),  # admitted, still in
    visit(6, "IMP", "2026-11-28T10:00:00+08:00", "2026-12-03T15:00:00+08:00"),  # discharged
    visit(7, "IMP", "2026-11-30T10:00:00+08:00"),  # in since before
    visit(8, "IMP", "2026-11-20T10:00:00+08:00", "2026-11-25T10:00:00+08:00"),  # long gone
    visit(9, "OBSENC", "2026-12-03T12:00:00+08:00"),
    swab(1, "94500-6", "2026-12-03T09:00:00+08:00", "阳性"),
    swab(2, "94500-6", "2026-12-03T10:00:00+08:00", "阴性"),
    swab(3, "94558-4", "2026-12-03T11:00:00+08:00", "阴性"),
    swab(4, "94500-6", "2026-12-04T00:01:00+08:00", "阳性"),  # the next day
]


async def test_a_days_indicators_are_counted_on_the_store(store: ResourceStore) -> None:
    for resource in SEASON:
        await store.update(resource)
    values = await day_values(store, catalogue(), DAY)
    assert values == {
        "FRMZRC": 2,  # 1 and 2 (4 began the day before; 3 was elsewhere)
        "MZRC": 2,  # 1 and 3
        "JZRC": 1,
        "GCRC": 1,
        "RYRC": 1,
        "CYRC": 1,
        "ZYRS": 2,  # 5 and 7 at midnight
        "HSJCRC": 2,
        "HSYXS": 1,
        "KYJCRC": 1,
        "KYYXS": 0,
        "KFCWS": 0,
    }


async def test_the_days_row_reaches_the_platforms_table_and_is_corrected(
    store: ResourceStore,
    front: FrontDatabase,  # noqa: F811
) -> None:
    engine = sa.create_engine(front.url)
    metadata = sa.MetaData()
    columns = [sa.Column(c, sa.Integer) for c in ("FRMZRC", "MZRC", "JZRC", "GCRC", "RYRC")]
    columns += [sa.Column(c, sa.Integer) for c in ("CYRC", "ZYRS", "HSJCRC", "HSYXS", "KYJCRC")]
    columns += [sa.Column("KYYXS", sa.Integer), sa.Column("KFCWS", sa.Integer)]
    table = sa.Table(
        "TB_YQ_FRMZ_ZB",
        metadata,
        sa.Column("YLJGDM", sa.String(33), primary_key=True),
        sa.Column("YWRQ", sa.Date, primary_key=True),
        *columns,
        sa.Column("TBRQ", sa.DateTime),
        sa.Column("XGBZ", sa.String(2)),
    )
    metadata.drop_all(engine, [table])
    metadata.create_all(engine, [table])
    try:
        for resource in SEASON:
            await store.update(resource)
        books = Bookkeeping(organisation="47000594-X")
        keys = ("YLJGDM", "YWRQ")
        values = await day_values(store, catalogue(), DAY)
        uploaded = {"TBRQ": "2026-12-03 15:15:00"}  # stamped when sent, in hospital time
        await front.upsert(table.name, keys, [day_row(values, DAY, books) | uploaded])
        await store.update(visit(10, "AMB", "2026-12-03T16:00:00+08:00", at="FRMZ"))  # late
        corrected = await day_values(store, catalogue(), DAY)
        await front.upsert(table.name, keys, [day_row(corrected, DAY, books) | uploaded])
        (row,) = await front.rows(table.name)
        assert (row["FRMZRC"], row["MZRC"], row["XGBZ"]) == (3, 3, "0")
        assert row["TBRQ"] == datetime(2026, 12, 3, 15, 15)  # hospital time
    finally:
        metadata.drop_all(engine, [table])
        engine.dispose()


def test_a_catalogue_that_cannot_be_counted_is_refused() -> None:
    with pytest.raises(ValueError, match="names its test codes"):
        parse({"indicators": [{"code": "X", "name": "x", "column": "X", "kind": "tests"}]})
    one = {"code": "A", "name": "a", "column": "A", "kind": "visits", "classes": ["AMB"]}
    with pytest.raises(ValueError, match="two indicators fill one column"):
        parse({"indicators": [one, one | {"code": "B"}]})
