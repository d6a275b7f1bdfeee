"""A strict epidemic-prevention platform (S1) for the tests and the hospital's dry runs
(``jianhu simulate epidemic``): it takes rows pushed as JSON (``{"table": ..., "rows": [...]}``)
and refuses what a regional platform refuses: another institution's code, an unknown table or
column, a business day that is not a date or lies ahead, an upload time that is not
``yyyy-MM-dd HH:mm:ss``, a flag other than 0 / 1, a count that is not a whole non-negative
number. When the platform corrects by revocation (``corrections="revoke"``) a second row for a
day that has one is refused until that one is revoked, and a revocation must match the row it
withdraws. Answers ``{"code": "0", "msg": "成功"}`` or a code and the reasons.

``GET /_state`` shows the live rows by day and counts; faults at ``/_faults``."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.indicators import catalogue
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


@dataclass
class IndicatorPlatform:
    org_code: str
    table: str
    indicators: tuple[str, ...]
    corrections: str = "upsert"
    org_column: str = "YLJGDM"
    day_column: str = "YWRQ"
    uploaded_column: str = "TBRQ"
    flag_column: str = "XGBZ"
    live: dict[str, Json] = field(default_factory=dict)  # business day -> its row
    received: int = 0
    revoked: int = 0

    def take(self, body: Any) -> None:
        """All the rows of one request, or none of them."""
        if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
            raise RowRefusedError("E101", "报文格式错误: {table, rows[]}")
        if body.get("table") != self.table:
            raise RowRefusedError("E101", f"未知的表 {body.get('table')!r}")
        rows = body["rows"]
        if not 1 <= len(rows) <= MAX_ROWS:
            raise RowRefusedError("E101", f"每次 1-{MAX_ROWS} 行")
        for row in rows:
            self._check(row)
        staged = dict(self.live)
        for row in rows:
            self._apply(staged, row)
        self.live = staged
        self.received += len(rows)

    def _check(self, row: Any) -> None:
        if not isinstance(row, dict):
            raise RowRefusedError("E101", "行不是对象")
        if row.get(self.org_column) != self.org_code:
            raise RowRefusedError("E102", f"机构代码不符: {row.get(self.org_column)!r}")
        known = {self.org_column, self.day_column, self.uploaded_column, self.flag_column}
        unknown = sorted(set(row) - known - set(self.indicators))
        problems = [f"未知字段 {', '.join(unknown)}"] if unknown else []
        problems += self._dates(row)
        if row.get(self.flag_column) not in ("0", "1"):
            problems.append(f"{self.flag_column} 只能是 0 或 1")
        for column in self.indicators:
            value = row.get(column)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"{column} 应为非负整数: {value!r}")
        if problems:
            raise RowRefusedError("E103", "; ".join(problems))

    def _dates(self, row: Json) -> list[str]:
        problems = []
        now = datetime.now(HOSPITAL).replace(tzinfo=None)
        try:
            day = date.fromisoformat(str(row.get(self.day_column)))
            if day > now.date():
                problems.append(f"{self.day_column} 不能晚于今天")
        except ValueError:
            problems.append(f"{self.day_column} 应为 yyyy-MM-dd")
        text = str(row.get(self.uploaded_column))
        try:
            uploaded = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
            if uploaded > now + timedelta(minutes=5):
                problems.append(f"{self.uploaded_column} 晚于当前时间")
        except ValueError:
            problems.append(f"{self.uploaded_column} 应为 yyyy-MM-dd HH:mm:ss")
        return problems

    def _apply(self, staged: dict[str, Json], row: Json) -> None:
        day = row[self.day_column]
        current = staged.get(day)
        if row[self.flag_column] == "1":
            if current is None or any(current[c] != row[c] for c in self.indicators):
                raise RowRefusedError("E105", f"{day} 没有与撤销内容一致的数据")
            del staged[day]
            self.revoked += 1
            return
        if current is not None and self.corrections == "revoke":
            raise RowRefusedError("E104", f"{day} 已有数据, 请先撤销 (XGBZ=1)")
        staged[day] = row


PLATFORM = web.AppKey("epidemic_platform", IndicatorPlatform)


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
    body = {"live": platform.live, "received": platform.received, "revoked": platform.revoked}
    return web.json_response(body)


def create_app(
    org_code: str = "SIM-ORG-CODE",
    config: EpidemicConfig | None = None,
) -> web.Application:
    """The platform as ``config`` describes it (table, path, columns, corrections); by
    default the shipped ones."""
    config = config or EpidemicConfig(
        organisation=org_code, transport="http", base_url="http://simulated"
    )
    app = web.Application()
    app[PLATFORM] = IndicatorPlatform(
        org_code=org_code,
        table=config.table,
        indicators=catalogue().columns,
        corrections=config.corrections,
        org_column=config.organisation_column,
        day_column=config.day_column,
        uploaded_column=config.uploaded_column,
        flag_column=config.flag_column,
    )
    add_fault_routes(app)
    app.router.add_post(config.path, upload)
    app.router.add_get("/_state", state)
    return app
