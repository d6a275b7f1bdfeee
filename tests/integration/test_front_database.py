"""Rows into a regulator's front-end database (前置库) on a real PostgreSQL and a real MariaDB
(and SQLite, for the update-then-insert path other databases take): the platform's own table,
upserted by its key, appended to, Chinese text kept, refusals named without the row's values."""

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.framework.front_database import FrontDatabase, FrontDatabaseRefusedError
from tests.conftest import ON_CI
from tests.databases import database_url

TABLE = "TB_YQ_TEST_ZB"


def platform_table(metadata: sa.MetaData) -> sa.Table:
    """A table as a platform's specification defines it (the hub never creates these)."""
    return sa.Table(
        TABLE,
        metadata,
        sa.Column("JGDM", sa.String(22), primary_key=True),  # 机构代码
        sa.Column("YWRQ", sa.Date, primary_key=True),  # 业务日期
        sa.Column("ZBDM", sa.String(20), primary_key=True),  # 指标代码
        sa.Column("ZBMC", sa.String(50)),  # 指标名称
        sa.Column("ZBZ", sa.Numeric(12, 2)),  # 指标值
        sa.Column("XGBZ", sa.String(1)),  # 修改标志
        sa.Column("SCSJ", sa.DateTime),  # 上传时间
    )


@pytest.fixture(params=["postgres", "mariadb", "sqlite"])
async def front(request: Any, tmp_path: Path) -> AsyncIterator[FrontDatabase]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'front.sqlite3'}"
    else:
        try:
            url = database_url(request.param)
        except Exception as exc:
            if ON_CI:
                pytest.fail(f"CI=true and no {request.param} could be found or started: {exc}")
            pytest.skip(f"no {request.param}: {exc}")
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = platform_table(metadata)
    metadata.drop_all(engine, [table])
    metadata.create_all(engine, [table])
    engine.dispose()
    database = FrontDatabase(url)
    yield database
    await database.close()
    engine = sa.create_engine(url)
    metadata.drop_all(engine, [table])
    engine.dispose()


def row(indicator: str, value: str, flag: str = "0") -> dict[str, Any]:
    return {
        "JGDM": "47000594-X",
        "YWRQ": dt.date(2026, 12, 3),
        "ZBDM": indicator,
        "ZBMC": "发热门诊就诊人次" if indicator == "FRMZ" else "核酸检测人次",
        "ZBZ": Decimal(value),
        "XGBZ": flag,
        "SCSJ": dt.datetime(2026, 12, 3, 10, 15),
    }


async def test_rows_are_upserted_by_their_key(front: FrontDatabase) -> None:
    keys = ("JGDM", "YWRQ", "ZBDM")
    assert await front.upsert(TABLE, keys, [row("FRMZ", "118"), row("HSJC", "342")]) == 2
    assert await front.upsert(TABLE, keys, [row("FRMZ", "121", flag="1")]) == 1  # a correction
    stored = {r["ZBDM"]: r for r in await front.rows(TABLE)}
    assert set(stored) == {"FRMZ", "HSJC"}  # updated in place, not added
    assert (stored["FRMZ"]["ZBZ"], stored["FRMZ"]["XGBZ"]) == (Decimal("121.00"), "1")
    assert stored["FRMZ"]["ZBMC"] == "发热门诊就诊人次"  # Chinese kept as it was written
    assert stored["HSJC"]["ZBZ"] == Decimal("342.00")


async def test_an_append_only_table_keeps_every_version(front: FrontDatabase) -> None:
    await front.insert(TABLE, [row("FRMZ", "118")])
    with pytest.raises(FrontDatabaseRefusedError, match=f"{TABLE} refused a row") as refused:
        await front.insert(TABLE, [row("FRMZ", "121", flag="1")])  # the same key again
    assert "121" not in str(refused.value)  # the database's words, not the row's values
    assert len(await front.rows(TABLE)) == 1  # the failed batch wrote nothing


async def test_what_the_database_cannot_take_is_refused_by_name(front: FrontDatabase) -> None:
    with pytest.raises(FrontDatabaseRefusedError, match="has no table TB_NOPE"):
        await front.insert("TB_NOPE", [row("FRMZ", "1")])
    with pytest.raises(FrontDatabaseRefusedError, match="has no column BZ"):
        await front.insert(TABLE, [row("FRMZ", "1") | {"BZ": "x"}])
    batch = [row("FRMZ", "1"), row("HSJC", "2") | {"JGDM": "X" * 40}]  # one row too long
    if "sqlite" not in front.url:  # SQLite does not enforce lengths
        with pytest.raises(FrontDatabaseRefusedError, match="refused a row"):
            await front.upsert(TABLE, ("JGDM", "YWRQ", "ZBDM"), batch)
        assert await front.rows(TABLE) == []  # all or nothing
