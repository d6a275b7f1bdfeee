"""A platform's field table checks a record before it is sent: each problem names its field."""

from adapters.framework.interface import Reception, Response
from adapters.framework.records import FieldRule, check
from adapters.framework.rows import coded_answer

RULES = [
    FieldRule(column="YLJGDM", name="医疗机构代码", length=10, required=True),
    FieldRule(column="YWRQ", type="date", required=True),
    FieldRule(column="TBRQ", type="datetime"),
    FieldRule(column="XGBZ", type="code", codes=("0", "1")),
    FieldRule(column="MZRC", type="integer", minimum=0, length=5),
    FieldRule(column="SYL", type="number"),
]


def test_a_good_record_passes() -> None:
    record = {"YLJGDM": "47000594", "YWRQ": "2026-12-03", "TBRQ": "2026-12-03 08:00:00"}
    assert check({**record, "XGBZ": "0", "MZRC": 12, "SYL": 0.5}, RULES) == []


def test_each_problem_names_its_field() -> None:
    record = {
        "YLJGDM": "",
        "YWRQ": "2026-13-03",
        "TBRQ": "2026-12-03T08:00",
        "XGBZ": "2",
        "MZRC": -1,
        "SYL": "many",
    }
    assert check(record, RULES) == [
        "YLJGDM (医疗机构代码): required",
        "YWRQ: not a date (yyyy-MM-dd): '2026-13-03'",
        "TBRQ: not a time (yyyy-MM-dd HH:mm:ss): '2026-12-03T08:00'",
        "XGBZ: '2' is not in its value domain (0, 1)",
        "MZRC: below 0: -1",
        "SYL: not a number: 'many'",
    ]
    assert check({"YLJGDM": "x" * 11, "YWRQ": "2026-12-03", "MZRC": 123456}, RULES) == [
        "YLJGDM (医疗机构代码): longer than 10 characters (11)",
        "MZRC: more than 5 digits",
    ]
    assert check({"YLJGDM": "1", "YWRQ": "2026-12-03", "MZRC": 1.5}, RULES) == [
        "MZRC: not a whole number: 1.5"
    ]


def test_a_coded_answer_is_sorted_by_its_code() -> None:
    classify = coded_answer(("0",))
    assert classify(Response(200, b'{"code": "0"}')).outcome is Reception.ACCEPTED
    refused = classify(Response(200, '{"code": "E103", "msg": "字段错误"}'.encode()))
    assert (refused.outcome, refused.detail) == (Reception.REJECTED, "E103: 字段错误")
    assert classify(Response(200, b"<html>")).outcome is Reception.FAILED
    assert classify(Response(503, b"")).outcome is Reception.FAILED
    assert classify(Response(404, b"")).outcome is Reception.REJECTED
