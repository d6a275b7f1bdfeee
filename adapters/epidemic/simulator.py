"""A strict epidemic-prevention platform (S1) for the tests and the hospital's dry runs
(``jianhu simulate epidemic``): the table platform of ``simulated_tables.py`` with the daily
indicators' table, its key (institution and business day) and its field table (the
bookkeeping columns and a whole, non-negative count per indicator of the catalogue)."""

from aiohttp import web

from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.indicators import catalogue
from adapters.epidemic.reporting import field_table
from adapters.framework.simulated_tables import (
    PLATFORM,
    PlatformTable,
    TablePlatform,
    create_platform_app,
)
from hub.base.json import Json

__all__ = ["PLATFORM", "create_app", "day_rows"]


def create_app(
    org_code: str = "SIM-ORG-CODE", config: EpidemicConfig | None = None
) -> web.Application:
    """The platform as ``config`` describes it (table, path, columns, corrections); by
    default the shipped ones."""
    config = config or EpidemicConfig(
        organisation=org_code, transport="http", base_url="http://simulated"
    )
    table = PlatformTable(config.table, config.key_columns, field_table(catalogue(), config.books))
    platform = TablePlatform(
        org_code=org_code,
        tables={table.name: table},
        corrections=config.corrections,
        org_column=config.organisation_column,
        uploaded_column=config.uploaded_column,
        flag_column=config.flag_column,
    )
    return create_platform_app(platform, config.path)


def day_rows(platform: TablePlatform, config: EpidemicConfig | None = None) -> dict[str, Json]:
    """The live rows by business day."""
    day_column = config.day_column if config else "YWRQ"
    return {str(row[day_column]): row for rows in platform.live.values() for row in rows.values()}
