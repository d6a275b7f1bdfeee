"""The lab service with an injected clock: a stored message feeds the TAT engine and the
critical-value desk, screens get masked events, acknowledgements leave a Communication and
AuditEvents naming the caller, an unacknowledged value escalates from the background task."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.lab.critical_alerts import Staff
from hub.lab.feed import LAB_TYPES
from hub.lab.service import LabService
from hub.schedule import SHANGHAI
from store.resources import ResourceStore
from tests.integration.test_bus_contract import wait_until

Json = dict[str, Any]
CORPUS = Path(__file__).parents[1] / "data" / "hl7"
NOW = datetime(2026, 3, 12, 5, 23, tzinfo=SHANGHAI)
TECH, NURSE = Staff("0499", "梁思远"), Staff("2107", "王芳")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Store:
    """What the service writes: the Communications."""

    def __init__(self) -> None:
        self.created: list[Json] = []

    async def create(self, resource: Json, id: str | None = None) -> None:
        self.created.append({**resource, "id": id or resource.get("id")})


class Lab:
    def __init__(self) -> None:
        self.clock, self.store, self.audit = Clock(), Store(), cast(list[Json], [])
        self.service = LabService(
            cast(ResourceStore, self.store), self.audit.append, clock=self.clock
        )
        self.screen = self.service.subscribe()

    async def feed(self, name: str) -> None:
        """As the lab queues bring it: each stored lab resource with the others as what it
        refers to (the store's reads are the integration tests'), then the message itself."""
        message = Message((CORPUS / name).read_bytes().decode("utf-8"))
        resources = normalize(message).resources
        for resource in resources:
            if resource["resourceType"] in LAB_TYPES:
                context = [r for r in resources if r is not resource]
                await self.service.take_resource(resource, context)
        await self.service.take_hl7(message)

    def events(self) -> list[Json]:
        found = []
        while not self.screen.empty():
            frame = self.screen.get_nowait()
            assert frame is not None
            assert frame.startswith(b"data: ")
            assert frame.endswith(b"\n\n")
            found.append(orjson.loads(frame.removeprefix(b"data: ")))
        return found


@pytest.fixture
def lab() -> Lab:
    return Lab()


async def test_a_critical_result_reaches_the_screen_masked(lab: Lab) -> None:
    await lab.feed("31-lis-oru-r01-critical-k-enhanced.hl7")
    (event,) = [e for e in lab.events() if e["type"] == "critical"]
    alert = event["alert"]
    assert event["step"] == "raised"
    assert (alert["patient"], alert["ward"], alert["bed"]) == ("杨*", "普外科病区", "05")
    assert alert["findings"][0]["value"] == "6.8 mmol/L"
    raw = orjson.dumps(event).decode()
    assert "杨丽" not in raw
    assert "Patient/" not in raw  # no references on a wall display
    assert lab.service.view.overview()["critical"] == [alert]


async def test_acknowledging_stores_the_notification_and_audits_the_caller(lab: Lab) -> None:
    await lab.feed("31-lis-oru-r01-critical-k-enhanced.hl7")
    (alert,) = lab.service.desk.open_alerts()
    lab.events()
    await lab.service.acknowledge_critical(alert.id, TECH, NURSE, "血钾6.8", "api-key:clinician")
    (communication,) = lab.store.created
    assert communication["id"] == f"crit-{alert.id}"
    assert communication["resourceType"] == "Communication"
    steps = [a["subtype"][0]["code"] for a in lab.audit]
    assert steps == ["raised", "acknowledged"]
    names = [agent.get("name") for agent in lab.audit[-1]["agent"]]
    assert names[0] == "梁思远"
    assert "api-key:clinician" in names
    assert lab.service.desk.audit == []  # persisted, not kept twice
    assert [e["step"] for e in lab.events()] == ["acknowledged"]
    assert lab.service.view.overview()["critical"] == []


async def test_an_overdue_tube_is_acknowledged_by_name(lab: Lab) -> None:
    lab.clock.now = datetime(2026, 3, 10, 12, 0, tzinfo=SHANGHAI)
    await lab.feed("18-emr-oml-o21-chem-order.hl7")
    (event,) = [e for e in lab.events() if e["type"] == "tat"]
    assert (event["kind"], event["alert"]["column"]) == ("raised", "receive")
    alert = lab.service.acknowledge_tat(event["alert"]["id"], "张护士", "已联系", "api-key:ops")
    assert alert.acknowledgement is not None
    (audit,) = lab.audit
    assert [a["name"] for a in audit["agent"]] == ["张护士", "api-key:ops"]
    assert audit["entity"][0]["what"]["reference"] == f"Specimen/{alert.specimen}"


async def test_the_background_task_escalates_and_sends_stage_counts(lab: Lab) -> None:
    await lab.feed("31-lis-oru-r01-critical-k-enhanced.hl7")
    await lab.feed("18-emr-oml-o21-chem-order.hl7")
    assert not [e for e in lab.events() if e["type"] == "stages"]  # coalesced into the tick
    lab.clock.now = NOW + timedelta(hours=2)
    lab.service.start()
    try:
        await wait_until(lambda: lab.service.desk.open_alerts()[0].level == 3)
    finally:
        await lab.service.stop()
    found = []
    while (frame := lab.screen.get_nowait()) is not None:  # stopping ends the screens' streams
        found.append(orjson.loads(frame.removeprefix(b"data: ")))
    # two hours unacknowledged: every level is called, one after the other, none skipped
    escalated = [e for e in found if e["type"] == "critical"]
    assert [(e["step"], e["alert"]["level"]) for e in escalated] == [
        ("escalated", 1),
        ("escalated", 2),
        ("escalated", 3),
    ]
    (stages,) = [e for e in found if e["type"] == "stages"]
    assert {s["key"]: s["count"] for s in stages["stages"]}["receive"] == 1


async def test_statistics_per_department_test_group_and_day() -> None:
    lab = Lab()
    await lab.feed("17-his-oml-o21-flu-order.hl7")
    await lab.feed("25-lis-oru-r01-flu-spm.hl7")
    rows = lab.service.view.statistics()
    assert len(rows) == 1
    (row,) = rows
    assert row["count"] == 1
    assert row["day"] == "2026-03-05"
    assert row["median_minutes"] == row["p90_minutes"] > 0  # one tube: both are its own TAT
    with pytest.raises(KeyError):
        lab.service.view.statistics("no-such-rule")
