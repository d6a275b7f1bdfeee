"""A platform's record layout (its field table): for each record type the platform's table, its
key columns and, per column, which of the hub's record fields fills it and the field's rule
(type, length, required, value domain). The influenza and fever-clinic platforms' layouts are
not public, so each is a site table (``flu-layout.json``, ``fever-layout.json``) with shipped
defaults in the pinyin-initial style of the regional ``TB_*`` tables; reshaping the records to
another standard is an edit of the table.

Every record is checked against its table's rules before it is sent (``check``); one that
fails is held in the ledger as not sent, naming the fields."""

from typing import Any

from pydantic import BaseModel, Field, model_validator

from adapters.framework.records import FieldRule, check
from hub.base import site_files


class Column(FieldRule, frozen=True):
    field: str  # the hub's record field that fills it (records.py, ili.py)


class TableLayout(BaseModel, frozen=True):
    table: str
    keys: tuple[str, ...] = ()  # the key columns, for upserts
    columns: tuple[Column, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _keys_are_columns(self) -> "TableLayout":
        names = {c.column for c in self.columns}
        if missing := [k for k in self.keys if k not in names]:
            raise ValueError(f"{self.table}: key columns not in the table: {', '.join(missing)}")
        return self

    def shape(self, record: dict[str, Any]) -> dict[str, Any]:
        """The platform's row: each column from its field; an empty value is left empty
        (None), which a number or date column takes and a required one refuses."""
        row = {}
        for column in self.columns:
            value = record.get(column.field)
            row[column.column] = None if value == "" else value
        return row

    def problems(self, row: dict[str, Any]) -> list[str]:
        return check(row, self.columns)


class Layout(BaseModel, frozen=True):
    tables: dict[str, TableLayout]  # record type -> its table


def parse(raw: Any) -> Layout:
    return Layout.model_validate(raw)


def layout(file: str) -> Layout:
    return parse(site_files.read_json("adapters.surveillance", f"data/{file}"))
