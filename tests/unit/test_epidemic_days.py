"""Which days an encounter or a test counts on, the month spans of a back-fill, and the strict
platform simulator's rules, without a store."""

from datetime import date

import pytest

from adapters.epidemic.daily import _encounter_days
from adapters.epidemic.indicators import Indicator
from adapters.epidemic.reporting import _runs
from adapters.framework.backfill import months
from adapters.framework.records import FieldRule
from adapters.framework.simulated_tables import PlatformTable, RowRefusedError, TablePlatform

IN_HOSPITAL = Indicator(
    code="ZYRS", name="在院人数", column="ZYRS", kind="in_hospital", classes=("IMP",)
)


def stay(start: str, end: str | None = None) -> dict[str, object]:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "class": {"code": "IMP"},
        "status": "finished" if end else "in-progress",
        "period": period,
    }


def test_a_stay_counts_in_hospital_at_the_end_of_each_day_before_it_ended() -> None:
    days = _encounter_days(
        IN_HOSPITAL,
        stay("2026-11-28T10:00:00+08:00", "2026-12-01T09:00:00+08:00"),
        date(2026, 11, 1),
        date(2026, 12, 31),
    )
    assert days == [date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)]
    # midnight in Shanghai is the evening before in UTC: the hospital's day decides
    utc = stay("2026-11-27T16:30:00Z", "2026-11-28T16:30:00Z")  # 00:30 the 28th to 00:30 29th
    assert _encounter_days(IN_HOSPITAL, utc, date(2026, 11, 1), date(2026, 11, 30)) == [
        date(2026, 11, 28)
    ]
    still_in = stay("2026-11-29T10:00:00+08:00")
    assert _encounter_days(IN_HOSPITAL, still_in, date(2026, 11, 30), date(2026, 12, 2)) == [
        date(2026, 11, 30),
        date(2026, 12, 1),
        date(2026, 12, 2),
    ]
    cancelled = {**still_in, "status": "cancelled"}
    assert _encounter_days(IN_HOSPITAL, cancelled, date(2026, 11, 1), date(2026, 12, 2)) == []


def test_a_backfill_goes_a_month_at_a_time() -> None:
    assert months(date(2020, 1, 15), date(2020, 3, 2)) == [
        (date(2020, 1, 15), date(2020, 1, 31)),
        (date(2020, 2, 1), date(2020, 2, 29)),
        (date(2020, 3, 1), date(2020, 3, 2)),
    ]
    assert months(date(2020, 3, 2), date(2020, 3, 1)) == []


def test_days_to_count_are_grouped_in_runs() -> None:
    days = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 5)]
    assert _runs(days) == [(date(2026, 1, 1), date(2026, 1, 2)), (date(2026, 1, 5),) * 2]


def platform(corrections: str = "upsert") -> TablePlatform:
    rules = [
        FieldRule(column="YLJGDM", required=True),
        FieldRule(column="YWRQ", type="date", required=True),
        FieldRule(column="XGBZ", type="code", codes=("0", "1")),
        FieldRule(column="MZRC", type="integer", minimum=0, required=True),
    ]
    table = PlatformTable("T", ("YLJGDM", "YWRQ"), rules)
    return TablePlatform(org_code="ORG", tables={"T": table}, corrections=corrections)


def row(**changes: object) -> dict[str, object]:
    return {
        "YLJGDM": "ORG",
        "YWRQ": "2026-12-01",
        "TBRQ": "2026-12-01 08:00:00",
        "XGBZ": "0",
        "MZRC": 3,
        **changes,
    }


@pytest.mark.parametrize(
    ("sent", "code", "words"),
    [
        ({"table": "T", "rows": [row(YLJGDM="OTHER")]}, "E102", "机构代码不符"),
        ({"table": "X", "rows": [row()]}, "E101", "未知的表"),
        ({"table": "T", "rows": []}, "E101", "每次"),
        ({"table": "T", "rows": [row(MZRC=-1)]}, "E103", "MZRC: below 0"),
        ({"table": "T", "rows": [row(MZRC=True)]}, "E103", "MZRC: not a number"),
        ({"table": "T", "rows": [row(EXTRA=1)]}, "E103", "未知字段 EXTRA"),
        ({"table": "T", "rows": [row(YWRQ="2999-01-01")]}, "E103", "YWRQ 不能晚于当前时间"),
        ({"table": "T", "rows": [row(TBRQ="2026-12-01T08:00")]}, "E103", "HH:mm:ss"),
        ({"table": "T", "rows": [row(XGBZ="2")]}, "E103", "只能是 0 或 1"),
        ({"table": "T", "rows": [row(XGBZ="1")]}, "E105", "没有与撤销内容一致的数据"),
    ],
)
def test_the_simulator_refuses_what_the_platform_would(
    sent: dict[str, object], code: str, words: str
) -> None:
    with pytest.raises(RowRefusedError) as refused:
        platform().take(sent)
    assert refused.value.code == code
    assert words in refused.value.reason


def test_a_revoking_platform_wants_the_old_row_withdrawn_first() -> None:
    strict = platform("revoke")
    strict.take({"table": "T", "rows": [row()]})
    with pytest.raises(RowRefusedError, match="E104"):
        strict.take({"table": "T", "rows": [row(MZRC=4)]})
    with pytest.raises(RowRefusedError, match="E105"):  # the revocation must match the row
        strict.take({"table": "T", "rows": [row(XGBZ="1", MZRC=5)]})
    strict.take({"table": "T", "rows": [row(XGBZ="1"), row(MZRC=4)]})
    assert strict.rows("T")[0]["MZRC"] == 4
    assert (strict.revoked, strict.received) == (1, 3)
    with pytest.raises(RowRefusedError):  # all the rows of a request, or none
        strict.take({"table": "T", "rows": [row(YWRQ="2026-12-02"), row(MZRC=-1)]})
    assert [r["YWRQ"] for r in strict.rows("T")] == ["2026-12-01"]
