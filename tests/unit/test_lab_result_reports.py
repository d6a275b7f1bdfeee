"""The lab feed remembers which report lists a result: the results of one big report cost one
read of the report, not one each (the cost of a message stays linear in its size)."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.lab.feed import ResultReports, context_of
from store.resources import StoredVersion


def report(id_: str, results: int, version: int = 1) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": id_,
        "meta": {"versionId": str(version)},
        "status": "final",
        "result": [{"reference": f"Observation/{id_}-{n}"} for n in range(results)],
    }


class CountingStore:
    """The two reads ``context_of`` makes, counted; one report in store."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = stored
        self.lookups = 0
        self.asked: list[tuple[str, str]] = []  # by read_many, which finds nothing

    async def referencing(self, target: str, limit: int) -> Sequence[StoredVersion]:
        self.lookups += 1
        body = orjson.dumps(self.stored)
        moment = datetime.now(UTC)
        return [StoredVersion("DiagnosticReport", self.stored["id"], 1, moment, body)]

    async def read_many(self, keys: Sequence[tuple[str, str]]) -> Sequence[StoredVersion]:
        self.asked.extend(keys)
        return []


async def test_five_thousand_results_of_one_report_read_it_once() -> None:
    store = CountingStore(report("r1", 5000))
    reports = ResultReports()
    for n in range(5000):
        observation = {"resourceType": "Observation", "id": f"r1-{n}"}
        context = await context_of(store, observation, reports=reports)  # type: ignore[arg-type]
        assert [item["id"] for item in context] == ["r1"]
    assert store.lookups == 1


async def test_what_the_store_lacks_is_asked_for_once_per_change_set() -> None:
    """The results' order names a placer requisition the hub never received: a set of a
    hundred results asks for it once, not a hundred times."""
    store = CountingStore(report("r3", 100))
    reports, absent = ResultReports(), set[str]()
    known: dict[str, dict[str, Any]] = {}
    for n in range(100):
        observation = {
            "resourceType": "Observation",
            "id": f"r3-{n}",
            "basedOn": [{"reference": "ServiceRequest/never-sent"}],
        }
        await context_of(store, observation, known, reports, absent)  # type: ignore[arg-type]
    assert store.asked == [("ServiceRequest", "never-sent")]
    assert absent == {"ServiceRequest/never-sent"}


async def test_a_report_event_is_remembered_and_a_newer_version_replaces_it() -> None:
    reports = ResultReports()
    reports.learn(report("r2", 3))
    assert reports.report_of("Observation/r2-2") is not None
    reports.learn(report("r2", 1, version=2))  # corrected: two results withdrawn
    assert reports.report_of("Observation/r2-2") is None
    assert reports.report_of("Observation/r2-0") is not None


def test_only_recent_reports_are_kept() -> None:
    reports = ResultReports(reports=2)
    for n in range(3):
        reports.learn(report(f"r{n}", 2))
    assert reports.report_of("Observation/r0-0") is None
    assert reports.report_of("Observation/r2-1") is not None
