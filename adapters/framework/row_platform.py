"""What every platform that takes rows of its own tables shares (S1 epidemic indicators, S5
influenza, S6 fever clinic): where it is (a front-end database, 前置库, or an HTTP address),
how a changed row is corrected (an upsert by the table's key, or a revocation of the accepted
row, 修改标志 1, and a new row), the bookkeeping columns, and the adapter built from that: one
interface per table and, for revocations, one more per table."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, SecretStr, model_validator

from adapters.framework.delivery import Adapter, Courier
from adapters.framework.front_database import FrontDatabase
from adapters.framework.interface import Interface, http_status_classifier
from adapters.framework.rows import FrontDatabaseTransport, RowInterface, coded_answer, revocation
from adapters.framework.transport import HttpTransport, Transport
from hub.base.hospital_time import HOSPITAL
from hub.base.logs import log_event
from store.ledger import ACCEPTED, DEAD, REJECTED

REVOKED = "1"
SENT, UNCHANGED, WAITING, HELD = "sent", "unchanged", "waiting", "held"
log = logging.getLogger(__name__)


class RowPlatformConfig(BaseModel):
    organisation: str = Field(min_length=1, max_length=33)  # 医疗机构代码
    transport: Literal["database", "http"]
    database_url: SecretStr | None = None  # e.g. mysql+pymysql://user:pw@host/qzk
    database_schema: str | None = None
    base_url: str | None = None
    path: str = "/upload"
    # "upsert": one row per key, replaced when it changes; "revoke": the table only grows, a
    # changed row is its accepted row again with the flag 1 (撤销), then the new row
    corrections: Literal["upsert", "revoke"] = "upsert"
    organisation_column: str = "YLJGDM"
    uploaded_column: str = "TBRQ"  # 上传时间
    flag_column: str = "XGBZ"  # 修改标志
    success_codes: tuple[str, ...] = ("0", "200")  # an HTTP platform's "accepted" answers
    timeout_s: float = 30.0

    @model_validator(mode="after")
    def _reachable(self) -> "RowPlatformConfig":
        if self.transport == "database" and self.database_url is None:
            raise ValueError("the database transport needs DATABASE_URL (the 前置库)")
        if self.transport == "database" and self.database_url is not None:
            usable_database_url(self.database_url.get_secret_value())
        if self.transport == "http" and not self.base_url:
            raise ValueError("the http transport needs BASE_URL")
        return self


def usable_database_url(url: str) -> None:
    """A URL SQLAlchemy can make an engine of, with its driver installed (no connection is
    made): a wrong one is a configuration error at start, not a crash at the first row."""
    try:
        sa.create_engine(url).dispose()
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        scheme = url.partition("://")[0] or url[:20]
        raise ValueError(f"DATABASE_URL ({scheme}://...) cannot be used: {exc}") from None


@dataclass(frozen=True)
class Table:
    interface: str  # the ledger's interface name for the table's rows
    name: str  # the platform's table
    keys: tuple[str, ...]  # its key columns, for upserts


@dataclass
class RowAdapter(Adapter):
    config: Any = None  # the platform's settings (a RowPlatformConfig)


def revocation_interface(interface: str) -> str:
    return f"{interface}/revocation"


def build_row_adapter(
    name: str,
    config: RowPlatformConfig,
    tables: list[Table],
    transport: Transport | None = None,
) -> RowAdapter:
    interfaces: dict[str, Interface] = {}
    for table in tables:
        interfaces |= _table_interfaces(config, table)
    return RowAdapter(name, transport or _transport(config), interfaces, config=config)


def _transport(config: RowPlatformConfig) -> Transport:
    if config.transport == "database":
        assert config.database_url is not None  # the config's validator sees to it
        url = config.database_url.get_secret_value()
        return FrontDatabaseTransport(FrontDatabase(url, config.database_schema))
    assert config.base_url is not None
    return HttpTransport(config.base_url, timeout_s=config.timeout_s)


def _table_interfaces(config: RowPlatformConfig, table: Table) -> dict[str, Interface]:
    def stamp() -> Mapping[str, Any]:
        now = datetime.now(HOSPITAL).replace(tzinfo=None, microsecond=0)
        return {config.uploaded_column: now.isoformat(sep=" ")}

    # a database answers by the transport's status; an HTTP platform by its code
    classify = (
        coded_answer(config.success_codes) if config.transport == "http" else http_status_classifier
    )

    def interface(name: str, keys: tuple[str, ...], **options: Any) -> RowInterface:
        return RowInterface(
            name,
            config.path,
            classify,
            table=table.name,
            keys=keys,
            via=config.transport,
            stamp=stamp,
            **options,
        )

    if config.corrections == "upsert":
        if not table.keys:
            raise ValueError(f"{table.name}: upsert corrections need the table's key columns")
        return {table.interface: interface(table.interface, table.keys)}
    revoking = revocation_interface(table.interface)
    return {
        table.interface: interface(
            table.interface,
            (),
            cancel=revoking,
            cancel_before_reupload=True,
            cancel_payload=revocation(config.flag_column, REVOKED),
        ),
        revoking: interface(revoking, ()),
    }


@dataclass
class Tally:
    """What became of the rows of a run: sent (accepted now), unchanged (accepted before with
    the same content), waiting (not accepted yet: the platform did not answer, the ledger sends
    it again), held (not sent: our field checks refused it, or the platform did)."""

    counts: dict[str, int] = field(
        default_factory=lambda: {SENT: 0, UNCHANGED: 0, WAITING: 0, HELD: 0}
    )

    @property
    def complete(self) -> bool:
        """Every row is at the platform."""
        return not (self.counts[WAITING] or self.counts[HELD])

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def __str__(self) -> str:
        return ", ".join(f"{count} {outcome}" for outcome, count in self.counts.items())


async def send_row(
    courier: Courier,
    adapter: str,
    interface: str,
    key: str,
    row: Mapping[str, object],
    problems: Sequence[str],
) -> str:
    """Send one row unless the ledger has its content already; a row with ``problems`` (its
    field table's) is held as not sent, naming them. Returns SENT, UNCHANGED, WAITING or
    HELD."""
    before = await courier.ledger.latest(adapter, interface, key)
    if problems:
        await courier.refuse(adapter, interface, key, dict(row), "; ".join(problems))
        # the fields, not the problems: those quote the values, which may be a patient's
        fields = sorted({problem.split(":", 1)[0] for problem in problems})
        log_event(log, "row-held", logging.WARNING, adapter=adapter, key=key, fields=fields)
        return HELD
    submitted = await courier.submit(adapter, interface, key, dict(row))
    if submitted.status in (REJECTED, DEAD):
        return HELD
    if submitted.status != ACCEPTED:
        return WAITING
    return UNCHANGED if before is not None and before.id == submitted.id else SENT
