"""A regulator's front-end database (前置库): a database on the hospital's side whose tables the
platform pulls from. The hub writes rows into them through SQLAlchemy Core, so PostgreSQL,
MySQL/MariaDB, Oracle and SQL Server all work with their own drivers in the URL.

The tables are the platform's: they are read from the database (reflected once), never created
here. ``upsert`` writes rows by their key columns in one transaction, with the database's own
upsert where it has one (PostgreSQL ``ON CONFLICT``, MySQL ``ON DUPLICATE KEY``), else an update
and, where it touched nothing, an insert. ``insert`` only appends (platforms that keep every
version, told apart by a modification flag such as XGBZ). SQLAlchemy's calls block: they run in
a worker thread, never on the event loop."""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.exc import DataError, IntegrityError, NoSuchTableError, OperationalError

from hub.base.errors import PermanentError, RetryableError
from hub.base.masking import mask_text

Row = Mapping[str, Any]


class FrontDatabaseRefusedError(PermanentError):
    """The database refused the rows as they are (a value too long, a missing column, a table
    that does not exist): sending them again will not help."""


@dataclass
class FrontDatabase:
    url: str
    schema: str | None = None
    _engine: sa.Engine | None = field(default=None, init=False, repr=False)
    _tables: dict[str, sa.Table] = field(default_factory=dict, init=False, repr=False)

    async def upsert(self, table: str, keys: Sequence[str], rows: Sequence[Row]) -> int:
        """Insert the rows, or update those whose key columns match; returns how many."""
        if not keys:
            raise ValueError("an upsert needs the table's key columns")
        return await asyncio.to_thread(self._write, table, rows, tuple(keys))

    async def insert(self, table: str, rows: Sequence[Row]) -> int:
        return await asyncio.to_thread(self._write, table, rows, ())

    async def rows(self, table: str, where: Row | None = None) -> list[dict[str, Any]]:
        """The table's rows (matching ``where``): what the platform would pull; for checks."""
        return await asyncio.to_thread(self._read, table, dict(where or {}))

    async def close(self) -> None:
        if self._engine is not None:
            await asyncio.to_thread(self._engine.dispose)
            self._engine = None

    # --- in the worker thread ---

    def _connected(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=2)
        return self._engine

    def _table(self, name: str) -> sa.Table:
        found = self._tables.get(name)
        if found is None:
            try:
                found = sa.Table(
                    name, sa.MetaData(), schema=self.schema, autoload_with=self._connected()
                )
            except NoSuchTableError as exc:
                raise FrontDatabaseRefusedError(
                    f"the front-end database has no table {name}"
                ) from exc
            except OperationalError as exc:
                raise RetryableError(f"the front-end database does not answer: {exc.orig}") from exc
            self._tables[name] = found
        return found

    def _write(self, name: str, rows: Sequence[Row], keys: tuple[str, ...]) -> int:
        if not rows:
            return 0
        table = self._table(name)
        unknown = sorted({column for row in rows for column in row} - set(table.columns.keys()))
        if unknown:
            raise FrontDatabaseRefusedError(f"{name} has no column {', '.join(unknown)}")
        try:
            typed = [_typed(table, row) for row in rows]
            with self._connected().begin() as connection:
                for row in typed:
                    _write_row(connection, table, row, keys)
        except (DataError, IntegrityError) as exc:
            raise FrontDatabaseRefusedError(f"{name} refused a row: {_reason(exc)}") from exc
        except ValueError as exc:  # a date or time column given text that is not one
            raise FrontDatabaseRefusedError(f"{name}: {exc}") from exc
        except OperationalError as exc:
            raise RetryableError(f"the front-end database failed: {_reason(exc)}") from exc
        return len(rows)

    def _read(self, name: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        table = self._table(name)
        query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
        with self._connected().connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def _typed(table: sa.Table, row: Row) -> dict[str, Any]:
    """Dates and times arrive as ISO text (the ledger keeps rows as JSON): they become the
    date and datetime values their columns hold, which every driver writes alike."""
    typed = dict(row)
    for column, value in row.items():
        if not isinstance(value, str):
            continue
        kind = _python_type(table.c[column].type)
        if kind is datetime:
            typed[column] = datetime.fromisoformat(value)
        elif kind is date:
            typed[column] = date.fromisoformat(value[:10])
    return typed


def _python_type(column_type: sa.types.TypeEngine[Any]) -> type | None:
    try:
        return column_type.python_type
    except NotImplementedError:  # a type SQLAlchemy does not map (a vendor's own)
        return None


def _write_row(
    connection: sa.Connection, table: sa.Table, row: dict[str, Any], keys: tuple[str, ...]
) -> None:
    if not keys:
        connection.execute(sa.insert(table).values(row))
        return
    changes = {column: value for column, value in row.items() if column not in keys}
    dialect = connection.dialect.name
    if dialect == "postgresql":
        pg_insert = postgresql.insert(table).values(row)
        connection.execute(pg_insert.on_conflict_do_update(index_elements=list(keys), set_=changes))
    elif dialect in ("mysql", "mariadb"):
        my_insert = mysql.insert(table).values(row)
        connection.execute(my_insert.on_duplicate_key_update(**changes))
    else:  # Oracle, SQL Server, SQLite: update, then insert what no row matched
        match = [table.c[key] == row[key] for key in keys]
        updated = connection.execute(sa.update(table).where(*match).values(changes))
        if updated.rowcount == 0:
            connection.execute(sa.insert(table).values(row))


def _reason(exc: Exception) -> str:
    """The driver's message (the database's own words), without SQLAlchemy's SQL and values:
    rows carry patient data, which must not reach a log or a ledger error unmasked."""
    original = getattr(exc, "orig", None)
    return mask_text(str(original if original is not None else exc).splitlines()[0][:300])
