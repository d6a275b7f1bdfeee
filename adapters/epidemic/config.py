"""Where the city's epidemic-prevention platform (S1) takes the hospital's indicators, and how.
The city's specification (《绍兴市疫情防控数据采集接口规范1.0》) is not public: the table, its
columns, the key, the way a past day is corrected and the addresses are configuration, with
defaults that follow the public regional-platform tables (``TB_*``, pinyin-initial columns,
YLJGDM / TBRQ / XGBZ bookkeeping).

``JIANHU_EPIDEMIC__ORGANISATION`` (医疗机构代码) and ``JIANHU_EPIDEMIC__TRANSPORT`` configure
it; then either ``__DATABASE_URL`` (the front-end database, 前置库, a SQLAlchemy URL) or
``__BASE_URL`` (HTTP push of JSON rows)."""

from datetime import date

from pydantic import model_validator

from adapters.epidemic.daily import Bookkeeping
from adapters.framework.row_platform import RowPlatformConfig


class EpidemicConfig(RowPlatformConfig):
    path: str = "/yqfk/upload"
    table: str = "TB_YQFK_MRZB"  # 疫情防控每日指标
    key_columns: tuple[str, ...] = ("YLJGDM", "YWRQ")
    day_column: str = "YWRQ"  # 业务日期
    backfill_since: date = date(2020, 1, 1)

    @model_validator(mode="after")
    def _keyed(self) -> "EpidemicConfig":
        if self.corrections == "upsert" and not self.key_columns:
            raise ValueError("upsert corrections need the table's KEY_COLUMNS")
        return self

    @property
    def books(self) -> Bookkeeping:
        return Bookkeeping(
            organisation_column=self.organisation_column,
            organisation=self.organisation,
            day_column=self.day_column,
            uploaded_column=self.uploaded_column,
            flag_column=self.flag_column,
        )
