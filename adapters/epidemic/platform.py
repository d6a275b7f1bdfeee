"""The epidemic-prevention platform as the delivery engine sees it: one interface for a day's
row and, where a changed day is corrected by revocation, one for the revocation (the accepted
row again with 修改标志 1), sent before the new row. Business key in the ledger: the business
day (``2026-12-03``)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.epidemic.config import EpidemicConfig
from adapters.framework.delivery import Adapter
from adapters.framework.front_database import FrontDatabase
from adapters.framework.interface import Interface, http_status_classifier
from adapters.framework.rows import (
    FrontDatabaseTransport,
    RowInterface,
    coded_answer,
    revocation,
)
from adapters.framework.transport import HttpTransport, Transport
from hub.base.hospital_time import HOSPITAL

ADAPTER = "epidemic"
DAY_ROW = "day"  # 每日指标
REVOCATION = "revocation"  # 撤销 (XGBZ 1)
REVOKED = "1"


@dataclass
class EpidemicAdapter(Adapter):
    config: EpidemicConfig = field(kw_only=True)


def build_adapter(config: EpidemicConfig, transport: Transport | None = None) -> EpidemicAdapter:
    if transport is None:
        if config.transport == "database":
            assert config.database_url is not None  # the config's validator sees to it
            database = FrontDatabase(config.database_url.get_secret_value(), config.database_schema)
            transport = FrontDatabaseTransport(database)
        else:
            assert config.base_url is not None
            transport = HttpTransport(config.base_url, timeout_s=config.timeout_s)
    return EpidemicAdapter(ADAPTER, transport, build_interfaces(config), config=config)


def build_interfaces(config: EpidemicConfig) -> dict[str, Interface]:
    def stamp() -> Mapping[str, Any]:
        now = datetime.now(HOSPITAL).replace(tzinfo=None, microsecond=0)
        return {config.uploaded_column: now.isoformat(sep=" ")}

    def row_interface(name: str, keys: tuple[str, ...], **options: Any) -> RowInterface:
        # a database answers by the transport's status; an HTTP platform by its code
        classify = (
            coded_answer(config.success_codes)
            if config.transport == "http"
            else http_status_classifier
        )
        return RowInterface(
            name,
            config.path,
            classify,
            table=config.table,
            keys=keys,
            via=config.transport,
            stamp=stamp,
            **options,
        )

    if config.corrections == "upsert":
        return {DAY_ROW: row_interface(DAY_ROW, config.key_columns)}
    # the table only grows: every row is an insert, and a changed day is revoked first
    return {
        DAY_ROW: row_interface(
            DAY_ROW,
            (),
            cancel=REVOCATION,
            cancel_before_reupload=True,
            cancel_payload=revocation(config.flag_column, REVOKED),
        ),
        REVOCATION: row_interface(REVOCATION, ()),
    }
