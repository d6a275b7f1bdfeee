"""What the DRG platform tells the hospital back, and the department table it needs.

- 标准科室查询: the platform's standard departments, asked once a day at most (they change
  with a policy, not with a patient) and used to fill the department matching table: the
  hospital's departments are matched by a configured code, else by name.
- 病案质控反馈查询 and 分组结果查询: asked every morning for the previous day's discharges and
  recorded in the ledger like any submission (the answer, with its rows, is the attempt's
  response), so the coders see the platform's findings next to what was uploaded."""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from adapters.drg import interfaces as drg
from adapters.drg.interfaces import query
from adapters.framework.delivery import Adapter, Courier
from hub.base.json import Json
from store.ledger import Submission

STANDARD_TTL_S = 24 * 3600.0


@dataclass
class StandardDepartments:
    adapter: Adapter
    ttl_s: float = STANDARD_TTL_S
    clock: Callable[[], float] = time.monotonic
    _cached: dict[str, str] = field(default_factory=dict)
    _asked_at: float | None = None

    async def get(self) -> dict[str, str]:
        """Standard department code -> name."""
        fresh = self._asked_at is not None and self.clock() - self._asked_at < self.ttl_s
        if not fresh:
            rows = await query(self.adapter, drg.STAND_DEPARTMENT, {})
            self._cached = {
                str(row["S_DEPARTMENT_CODE"]): str(row.get("S_DEPARTMENT_NAME", ""))
                for row in rows
                if row.get("S_DEPARTMENT_CODE")
            }
            self._asked_at = self.clock()
        return dict(self._cached)


@dataclass(frozen=True)
class Matching:
    rows: list[Json]  # DEPT_MATCHS, ready to submit
    unmatched: list[str]  # the hospital's department codes a person must match


def match_departments(
    local: Mapping[str, str], standard: Mapping[str, str], configured: Mapping[str, str]
) -> Matching:
    """``local``: the hospital's department code -> name; ``configured``: local code ->
    standard code where someone decided it. Otherwise the standard department whose name is
    the local name, or contains it (呼吸内科 -> 呼吸内科专业); several candidates, or none,
    leave the department to a person rather than guess."""
    rows, unmatched = [], []
    for code, name in sorted(local.items()):
        chosen = configured.get(code)
        if chosen is None:
            exact = [s for s, s_name in standard.items() if s_name == name]
            partial = [s for s, s_name in standard.items() if name and name in s_name]
            candidates = exact or partial
            chosen = candidates[0] if len(candidates) == 1 else None
        if chosen is None or chosen not in standard:
            unmatched.append(code)
            continue
        rows.append({"HOS_DEPT_CODE": code, "HOS_DEPT_NAME": name, "S_DEPARTMENT_CODE": chosen})
    return Matching(rows, unmatched)


async def ask_feedback(delivery: Courier, day: date) -> list[Submission]:
    """The quality-control feedback and the grouping results of one day's discharges."""
    span = {
        "START_DATE": f"{day.isoformat()} 00:00:00",
        "END_DATE": f"{(day + timedelta(days=1)).isoformat()} 00:00:00",
    }
    return [
        await delivery.submit(drg.ADAPTER, interface, day.isoformat(), span)
        for interface in (drg.QUALITY_FEEDBACK, drg.GROUP_RESULT)
    ]
