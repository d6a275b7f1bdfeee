"""The lab service with an injected clock: a stored message feeds the TAT engine and the
critical-value desk, screens get masked events, acknowledgements leave a Communication and
AuditEvents naming the caller, an unacknowledged value escalates from the background task."""

import asyncio
import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from hub.base.errors import StoreError
from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.lab import rebuild
from hub.lab.critical_alerts import Staff
from hub.lab.feed import LAB_TYPES
from hub.lab.lifecycle import Stage
from hub.lab.pool_tube import load_rules, member_specimen, pool_specimen
from hub.lab.service import LabService
from store.resources import ResourceStore

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
NOW = datetime(2026, 3, 12, 5, 23, tzinfo=HOSPITAL)
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
        self.refusals = 0  # how many writes to refuse first, as a busy or broken store would

    async def update(self, resource: Json, if_match: int | None = None) -> None:
        if self.refusals:
            self.refusals -= 1
            raise StoreError("database is locked")
        self.created.append(resource)


class Lab:
    def __init__(self) -> None:
        self.clock, self.store, self.audit = Clock(), Store(), cast(list[Json], [])
        self.service = LabService(
            cast(ResourceStore, self.store), self.audit.append, clock=self.clock
        )
        self.service.always_active = True  # one process: nobody else holds the lab queues
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
    lab.clock.now = datetime(2026, 3, 10, 12, 0, tzinfo=HOSPITAL)
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
        await lab.service.look_now()  # two hours late: it catches up level by level
        assert lab.service.desk.open_alerts()[0].level == 3
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
    # the wall's 今日报告 counts by the day the report went out
    reported = lab.service.engine.track(next(iter(lab.service.engine.completed)))
    assert reported is not None
    end = reported.time_of(Stage.REPORTED)
    assert end is not None
    lab.clock.now = end.replace(hour=23, minute=59)
    assert lab.service.view.kpi()["reported_today"] == 1
    lab.clock.now = end + timedelta(days=1)
    assert lab.service.view.kpi()["reported_today"] == 0


async def test_a_standby_neither_escalates_nor_keeps_its_memory_once_active() -> None:
    """A process that does not hold the lab queues hears nothing from them: its desk is stale,
    so it does not escalate. When it hears (it took the queues over), it starts from nothing
    and rebuilds from the store before the message, and escalates from then on."""
    lab = Lab()
    lab.service.always_active = False
    await lab.feed("31-lis-oru-r01-critical-k-enhanced.hl7")
    stale = lab.service.desk
    lab.clock.now = NOW + timedelta(hours=2)
    rebuilt: list[int] = []

    async def refresh() -> None:
        rebuilt.append(len(lab.service.desk.open_alerts()))

    lab.service.start(refresh=refresh)
    try:
        await asyncio.sleep(0.05)  # a few ticks
        assert not lab.service.active
        assert stale.open_alerts()[0].level == 0  # never escalated by a standby
        lab.service._started -= 10  # long after the start: the queues changed hands
        await lab.service.catch_up()
        assert lab.service.active
        assert rebuilt == [0]  # the memory was emptied before the rebuild
        assert lab.service.desk is not stale
        assert {"type": "reload"} in lab.events()  # the screens reload what was rebuilt
        await lab.service.catch_up()
        assert rebuilt == [0]  # heard lately: no second rebuild
    finally:
        await lab.service.stop()


def potassium(version: str, value: float) -> tuple[Json, list[Json]]:
    """The corpus's critical potassium as the store holds it at ``version``, with its context."""
    message = Message((CORPUS / "31-lis-oru-r01-critical-k-enhanced.hl7").read_bytes().decode())
    resources = normalize(message).resources
    (found,) = [
        r
        for r in resources
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "2823-3"
    ]
    result = copy.deepcopy(found)
    result["meta"] = {"versionId": version}
    result["valueQuantity"]["value"] = value
    if value < 6:
        result["status"] = "corrected"
        result.pop("interpretation", None)
    return result, [r for r in resources if r is not found]


async def test_a_stale_version_after_its_correction_changes_nothing(lab: Lab) -> None:
    """Version 2 (corrected to normal) is handled before version 1 (critical), as concurrent
    handlers or a retry can deliver them: no alert comes from the stale version."""
    corrected, context = potassium("2", 4.4)
    first, _ = potassium("1", 6.8)
    await lab.service.take_resource(corrected, context)
    await lab.service.take_resource(first, context)
    assert lab.service.desk.open_alerts() == []


async def test_a_deleted_result_closes_its_alert(lab: Lab) -> None:
    result, context = potassium("1", 6.8)
    await lab.service.take_resource(result, context)
    (alert,) = lab.service.desk.open_alerts()
    await lab.service.take_deletion("Observation", result["id"], 2)
    assert lab.service.desk.open_alerts() == []
    assert lab.service.desk.get(alert.id).close_reason == "结果已撤销"
    await lab.service.take_deletion("Observation", result["id"], 2)  # delivered again: no-op


async def test_the_people_of_a_pool_tube_are_not_tubes_of_their_own(lab: Lab) -> None:
    rules = load_rules()
    pool = pool_specimen("HJ261126000001", "核酸采样点1", lab.clock(), rules)
    for n in range(10):
        swab = member_specimen(pool, f"Patient/p{n}", lab.clock())
        swab["meta"] = {"versionId": "1"}
        await lab.service.take_resource(swab, [pool])
    lab.clock.now += timedelta(hours=1)
    lab.service.engine.tick()
    assert lab.service.engine.in_flight() == 0
    assert lab.service.engine.alerts() == []


class _Versions:
    def __init__(self, body: Json) -> None:
        self.body = orjson.dumps(body)


async def test_an_acknowledged_value_corrected_but_still_critical_stays_settled_on_rebuild(
    lab: Lab,
) -> None:
    """Raised, acknowledged, then a correction still critical (an ``updated`` step last in the
    trail): a restart must not bring it back open, nor escalate it."""
    first, context = potassium("1", 6.8)
    await lab.service.take_resource(first, context)
    (alert,) = lab.service.desk.open_alerts()
    await lab.service.acknowledge_critical(alert.id, TECH, NURSE, "血钾6.8", "api-key:clinician")
    second, _ = potassium("2", 6.9)
    await lab.service.take_resource(second, context)
    steps = [a["subtype"][0]["code"] for a in lab.audit]
    assert steps == ["raised", "acknowledged", "updated"]

    class Store:
        async def read_many(self, keys: Any) -> list[_Versions]:
            return [_Versions(second)]

        async def referencing(self, target: str, limit: int) -> list[Any]:
            return []

    restarted = LabService(cast(ResourceStore, Store()), lambda _: None, clock=lab.clock)
    assert await rebuild._restore_critical(restarted, cast(ResourceStore, Store()), lab.audit) == 0
    assert restarted.desk.open_alerts() == []


async def test_a_notification_the_store_refused_is_written_at_a_later_tick(lab: Lab) -> None:
    """The acknowledgement stands (the clinician was told); its Communication is not lost
    when the store refuses it once, and is written once."""
    result, context = potassium("1", 6.8)
    await lab.service.take_resource(result, context)
    (alert,) = lab.service.desk.open_alerts()
    lab.store.refusals = 1
    await lab.service.acknowledge_critical(alert.id, TECH, NURSE, "血钾6.8", "api-key:clinician")
    assert lab.store.created == []
    lab.service.start()
    try:
        await lab.service.look_now()
        assert len(lab.store.created) == 1
    finally:
        await lab.service.stop()
    assert lab.store.created[0]["id"] == f"crit-{alert.id}"
