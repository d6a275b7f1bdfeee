"""A strict platform that takes rows of its tables pushed as JSON (``{"table": ..., "rows":
[...]}``), for the simulators of the regional platforms (``jianhu simulate epidemic|flu|fever``).
It refuses what such a platform refuses: an unknown table or column, another institution's
code, a row that breaks its field table (a missing required field, a wrong type or length, a
code outside its value domain), an upload time that is not ``yyyy-MM-dd HH:mm:ss``, a date
that lies ahead, a flag other than 0 / 1. Rows are kept by their key columns; where the
platform corrects by revocation (``corrections="revoke"``) a second row for a key that has one
is refused until that one is revoked, and a revocation must match the row it withdraws. A
request is taken whole or not at all. Answers ``{"code": "0", "msg": "成功"}`` or a code and
the reasons; faults at ``/_faults``, what it holds at ``GET /_state``."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from adapters.framework.records import FieldRule, check
from adapters.framework.simulated import FAULTS, add_fault_routes, injected
from hub.base.errors import PermanentError
from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json

OK = "0"
MAX_ROWS = 500


class RowRefusedError(PermanentError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class PlatformTable:
    name: str
    keys: tuple[str, ...]
    rules: Sequence[FieldRule]  # its columns, besides the upload time


@dataclass
class TablePlatform:
    org_code: str
    tables: dict[str, PlatformTable]
    corrections: str = "upsert"
    org_column: str = "YLJGDM"
    uploaded_column: str = "TBRQ"
    flag_column: str = "XGBZ"
    live: dict[str, dict[tuple[Any, ...], Json]] = field(default_factory=dict)
    received: int = 0
    revoked: int = 0

    def rows(self, table: str) -> list[Json]:
        return list(self.live.get(table, {}).values())

    def take(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
            raise RowRefusedError("E101", "报文格式错误: {table, rows[]}")
        table = self.tables.get(str(body.get("table")))
        if table is None:
            raise RowRefusedError("E101", f"未知的表 {body.get('table')!r}")
        rows = body["rows"]
        if not 1 <= len(rows) <= MAX_ROWS:
            raise RowRefusedError("E101", f"每次 1-{MAX_ROWS} 行")
        for row in rows:
            self._check(table, row)
        staged = dict(self.live.get(table.name, {}))
        revoked = 0
        for row in rows:
            revoked += self._apply(table, staged, row)
        self.live[table.name] = staged
        self.received += len(rows)
        self.revoked += revoked

    def _check(self, table: PlatformTable, row: Any) -> None:
        if not isinstance(row, dict):
            raise RowRefusedError("E101", "行不是对象")
        if row.get(self.org_column) != self.org_code:
            raise RowRefusedError("E102", f"机构代码不符: {row.get(self.org_column)!r}")
        known = {rule.column for rule in table.rules} | {self.uploaded_column}
        unknown = sorted(set(row) - known)
        problems = [f"未知字段 {', '.join(unknown)}"] if unknown else []
        problems += check(row, table.rules)
        problems += self._times(table, row)
        if row.get(self.flag_column) not in ("0", "1"):
            problems.append(f"{self.flag_column} 只能是 0 或 1")
        if problems:
            raise RowRefusedError("E103", "; ".join(problems))

    def _times(self, table: PlatformTable, row: Json) -> list[str]:
        now = datetime.now(HOSPITAL).replace(tzinfo=None) + timedelta(minutes=5)
        problems = []
        try:
            if datetime.strptime(str(row.get(self.uploaded_column)), "%Y-%m-%d %H:%M:%S") > now:
                problems.append(f"{self.uploaded_column} 晚于当前时间")
        except ValueError:
            problems.append(f"{self.uploaded_column} 应为 yyyy-MM-dd HH:mm:ss")
        for rule in table.rules:
            value = row.get(rule.column)
            if rule.type not in ("date", "datetime") or not isinstance(value, str):
                continue
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue  # the field table has named it
            if (moment.date() if rule.type == "date" else moment) > (
                now.date() if rule.type == "date" else now
            ):
                problems.append(f"{rule.column} 不能晚于当前时间")
        return problems

    def _apply(self, table: PlatformTable, staged: dict[tuple[Any, ...], Json], row: Json) -> int:
        key = tuple(row.get(column) for column in table.keys)
        current = staged.get(key)
        if row[self.flag_column] == "1":
            bookkeeping = {self.uploaded_column, self.flag_column}
            if current is None or any(
                current.get(c) != v for c, v in row.items() if c not in bookkeeping
            ):
                raise RowRefusedError("E105", f"{key} 没有与撤销内容一致的数据")
            del staged[key]
            return 1
        if current is not None and self.corrections == "revoke":
            raise RowRefusedError("E104", f"{key} 已有数据, 请先撤销 ({self.flag_column}=1)")
        staged[key] = row
        return 0


PLATFORM = web.AppKey("table_platform", TablePlatform)


async def upload(request: web.Request) -> web.Response:
    fault = await injected(request)
    if fault is not None:
        return fault
    platform = request.app[PLATFORM]
    try:
        if not request.content_type.startswith("application/json"):
            raise RowRefusedError("E101", "Content-Type 应为 application/json")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise RowRefusedError("E101", "不是 JSON") from exc
        if request.app[FAULTS].take_rejection():
            raise RowRefusedError("E199", "模拟的业务拒绝")
        platform.take(body)
    except RowRefusedError as refused:
        return web.json_response({"code": refused.code, "msg": refused.reason})
    return web.json_response({"code": OK, "msg": "成功"})


async def state(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    tables = {name: platform.rows(name) for name in platform.tables}
    body = {"tables": tables, "received": platform.received, "revoked": platform.revoked}
    return web.json_response(body, dumps=lambda value: orjson.dumps(value).decode())


def create_platform_app(platform: TablePlatform, path: str) -> web.Application:
    app = web.Application()
    app[PLATFORM] = platform
    add_fault_routes(app)
    app.router.add_post(path, upload)
    app.router.add_get("/_state", state)
    return app
