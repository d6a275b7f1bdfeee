"""The correlation id: what a caller may give as one, what ``meta.source`` says, and that log
lines written under an origin name it (in threads too)."""

import asyncio
import logging

import orjson
import pytest

from hub.base.correlation import (
    Origin,
    current,
    from_headers,
    of_resource,
    system_of,
    traceable,
    usable,
    within,
)
from hub.base.logs import JsonFormatter, log_event


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("emr-req-0001", "emr-req-0001"),
        ("has space", None),
        ("a/b", None),
        ("x" * 65, None),
        ("-leading-dash", None),
        ("", None),
        (None, None),
        ("0193A7C2-1F2E-7D3C-9A51-23B8C2D4E5F6", None),  # the hub's own form: not a caller's
    ],
)
def test_only_plain_short_ids_are_taken_from_a_caller(given: str | None, kept: str | None) -> None:
    assert usable(given) == kept


def test_the_first_usable_header_wins() -> None:
    assert from_headers({"X-Correlation-ID": "bad id", "X-Request-ID": "req-1"}) == "req-1"
    assert from_headers({}) is None


def test_any_printable_id_up_to_200_characters_can_be_traced() -> None:
    for control_id in ("LIS 2026/03#7", "_", ".", "-", "检验0001", "x" * 200):
        assert traceable(control_id) == control_id
    for bad in ("", "x" * 201, "a\x00b", "line\nbreak"):
        assert traceable(bad) is None


def test_meta_source_names_the_system_and_the_id() -> None:
    origin = Origin("m1", "api-key:clinician")
    assert origin.source == "urn:jianhu:system:api-key-clinician#m1"
    assert Origin("m2").source == "urn:jianhu:system:unknown#m2"
    assert of_resource({"meta": {"source": origin.source}}) == "m1"
    assert of_resource({"meta": {"source": "http://emr.example#x"}}) is None  # not ours
    assert of_resource({}) is None
    assert system_of({"meta": {"source": origin.source}}) == "api-key-clinician"
    assert system_of({"meta": {"source": "http://emr.example#x"}}) == ""


async def test_log_lines_under_an_origin_name_it_in_tasks_and_threads() -> None:
    formatter = JsonFormatter()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            record.formatted = formatter.format(record)

    log = logging.getLogger("test.correlation")
    log.addHandler(handler := Keep())
    log.setLevel(logging.INFO)
    try:
        with within(Origin("m1", "LIS")):
            await asyncio.to_thread(log_event, log, "in_thread")
            await asyncio.create_task(asyncio.to_thread(log_event, log, "in_task"))
        log_event(log, "outside")
    finally:
        log.removeHandler(handler)
    lines = [orjson.loads(r.formatted) for r in records]  # type: ignore[attr-defined]
    assert [line.get("correlation_id") for line in lines] == ["m1", "m1", None]
    assert current() is None


def test_a_callers_id_that_is_an_id_card_number_is_masked_in_any_log_line() -> None:
    record = logging.makeLogRecord({"msg": "a library's own line", "levelno": logging.INFO})
    with within(Origin("110101199003074578", "api")):
        line = orjson.loads(JsonFormatter().format(record))
    assert line["correlation_id"] != "110101199003074578"
    assert line["correlation_id"].startswith("110101")
