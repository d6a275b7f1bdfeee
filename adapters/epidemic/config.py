"""Where the city's epidemic-prevention platform (S1) takes the hospital's indicators, and how.
The city's specification (《绍兴市疫情防控数据采集接口规范1.0》) is not public: the table, its
columns, the key, the way a past day is corrected and the addresses are configuration, with
defaults that follow the public regional-platform tables (``TB_*``, pinyin-initial columns,
YLJGDM / TBRQ / XGBZ bookkeeping).

``JIANHU_EPIDEMIC__ORGANISATION`` (医疗机构代码) and ``JIANHU_EPIDEMIC__TRANSPORT`` configure
it; then either ``__DATABASE_URL`` (the front-end database, 前置库, a SQLAlchemy URL) or
``__BASE_URL`` (HTTP push of JSON rows)."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from adapters.epidemic.daily import Bookkeeping


class EpidemicConfig(BaseModel):
    organisation: str = Field(min_length=1, max_length=33)  # 医疗机构代码
    transport: Literal["database", "http"]
    database_url: SecretStr | None = None  # e.g. mysql+pymysql://user:pw@host/qzk
    database_schema: str | None = None
    base_url: str | None = None
    path: str = "/yqfk/upload"
    table: str = "TB_YQFK_MRZB"  # 疫情防控每日指标
    # "upsert": one row per key, replaced when a day changes; "revoke": the table only grows,
    # a changed day is its accepted row again with XGBZ 1 (撤销), then the new row
    corrections: Literal["upsert", "revoke"] = "upsert"
    key_columns: tuple[str, ...] = ("YLJGDM", "YWRQ")
    organisation_column: str = "YLJGDM"
    day_column: str = "YWRQ"  # 业务日期
    uploaded_column: str = "TBRQ"  # 上传时间
    flag_column: str = "XGBZ"  # 修改标志
    success_codes: tuple[str, ...] = ("0", "200")  # an HTTP platform's "accepted" answers
    backfill_since: date = date(2020, 1, 1)
    timeout_s: float = 30.0

    @model_validator(mode="after")
    def _reachable(self) -> "EpidemicConfig":
        if self.transport == "database" and self.database_url is None:
            raise ValueError("the database transport needs DATABASE_URL (the 前置库)")
        if self.transport == "http" and not self.base_url:
            raise ValueError("the http transport needs BASE_URL")
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
