"""The epidemic-prevention platform as the delivery engine sees it: one table of daily rows
(``RowPlatformConfig``: pushed over HTTP or written into the front-end database), corrected by
upsert or by revocation as configured. Business key in the ledger: the business day
(``2026-12-03``)."""

from adapters.epidemic.config import EpidemicConfig
from adapters.framework.row_platform import (
    RowAdapter,
    Table,
    build_row_adapter,
    revocation_interface,
)
from adapters.framework.transport import Transport

ADAPTER = "epidemic"
DAY_ROW = "day"  # 每日指标
REVOCATION = revocation_interface(DAY_ROW)  # 撤销 (XGBZ 1)


def build_adapter(config: EpidemicConfig, transport: Transport | None = None) -> RowAdapter:
    table = Table(DAY_ROW, config.table, config.key_columns)
    return build_row_adapter(ADAPTER, config, [table], transport)
