"""危急值: thresholds by age band and sex at their edges, units compared and never converted,
coded results, and the desk's acknowledgement (复述), escalation and correction, on an injected
clock. The Communication and AuditEvents pass the hub's own validator."""

import asyncio
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_profiles.validation import validate
from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.lab.critical_alerts import (
    AlertEvent,
    AlertState,
    AlertStateError,
    Staff,
    Step,
    UnknownAlertError,
)
from hub.lab.critical_check import FindingKind, check
from hub.lab.critical_desk import (
    CriticalValueDesk,
)
from hub.lab.critical_rules import load_rules

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
LOINC = "http://loinc.org"
LIS_LOCAL = "urn:jianhu:codesystem:local:lis-l"
RESULT_DAY = date(2026, 3, 12)
START = datetime(2026, 3, 12, 5, 22, 30, tzinfo=HOSPITAL)

TECH = Staff("0499", "梁思远")  # 检验科
NURSE = Staff("2107", "王芳")  # 普外科病区


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def observation(
    code: str,
    value: float | None = None,
    unit: str | None = "mmol/L",
    *,
    system: str = LOINC,
    status: str = "final",
    version: str | None = None,
    id_: str = "obs-1",
    **extra: Any,
) -> Json:
    found: Json = {
        "resourceType": "Observation",
        "id": id_,
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": "2026-03-12T05:05:00+08:00",
        **extra,
    }
    if value is not None:
        quantity: Json = {"value": value}
        if unit is not None:
            quantity.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
        found["valueQuantity"] = quantity
    if version is not None:
        found["meta"] = {"versionId": version}
    return found


def patient(gender: str | None = "female", born: date | None = date(1978, 12, 8)) -> Json:
    found: Json = {"resourceType": "Patient", "id": "pat-1"}
    if gender:
        found["gender"] = gender
    if born:
        found["birthDate"] = born.isoformat()
    return found


def kinds(obs: Json, who: Json | None = None) -> list[FindingKind]:
    return [f.kind for f in check(obs, who if who is not None else patient())]


def errors_of(resource: Json) -> list[str]:
    return [i.diagnostics for i in validate(resource) if i.severity in ("error", "fatal")]


# -- thresholds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.79, [FindingKind.LOW]),
        (2.8, []),  # the limit itself is not critical: K < 2.8
        (6.2, []),
        (6.21, [FindingKind.HIGH]),
    ],
)
def test_adult_potassium_edges(value: float, expected: list[FindingKind]) -> None:
    assert kinds(observation("2823-3", value)) == expected


@pytest.mark.parametrize(
    ("born", "value", "expected"),
    [
        (RESULT_DAY - timedelta(days=27), 7.0, []),  # neonate: > 7.0
        (RESULT_DAY - timedelta(days=27), 7.01, [FindingKind.HIGH]),
        (RESULT_DAY - timedelta(days=27), 2.5, []),  # neonate: < 2.5
        (RESULT_DAY - timedelta(days=27), 2.49, [FindingKind.LOW]),
        (RESULT_DAY - timedelta(days=28), 6.01, [FindingKind.HIGH]),  # day 28: a child, > 6.0
        (RESULT_DAY - timedelta(days=28), 6.0, []),
        (date(2012, 3, 13), 6.1, [FindingKind.HIGH]),  # 13 the day before the 14th birthday
        (date(2012, 3, 12), 6.1, []),  # 14 today: adult, > 6.2
        (date(2012, 3, 12), 6.21, [FindingKind.HIGH]),
    ],
)
def test_potassium_by_age_band(born: date, value: float, expected: list[FindingKind]) -> None:
    assert kinds(observation("2823-3", value), patient("male", born)) == expected


def test_band_and_sex_are_in_the_finding() -> None:
    (finding,) = check(observation("2823-3", 7.2), patient("male", RESULT_DAY - timedelta(days=3)))
    assert (finding.band, finding.sex, finding.limit) == ("neonate", "male", "> 7 mmol/L")
    assert finding.text == "钾 7.2 mmol/L，高于危急值上限 7 mmol/L"


@pytest.mark.parametrize(
    ("gender", "value", "expected"),
    [
        ("female", 190, []),
        ("female", 191, [FindingKind.HIGH]),
        ("male", 191, []),
        ("male", 200, []),
        ("male", 201, [FindingKind.HIGH]),
        (None, 191, [FindingKind.HIGH]),  # sex unknown: the tighter of the two limits
        ("female", 49, [FindingKind.LOW]),
        ("female", 50, []),
    ],
)
def test_hemoglobin_by_sex(gender: str | None, value: float, expected: list[FindingKind]) -> None:
    hb = observation("718-7", value, "g/L")
    assert kinds(hb, patient(gender, date(1980, 1, 1))) == expected


def test_unknown_birth_date_is_judged_as_adult() -> None:
    assert kinds(observation("2823-3", 6.5), patient("male", None)) == [FindingKind.HIGH]
    assert kinds(observation("2823-3", 6.1), patient("male", None)) == []


def test_local_lis_and_analyser_codes_use_the_same_rule() -> None:
    assert kinds(observation("K", 2.1, system=LIS_LOCAL)) == [FindingKind.LOW]
    mindray = "urn:jianhu:codesystem:local:mindray-99mrc"
    assert kinds(observation("GLU", 25.0, system=mindray)) == [FindingKind.HIGH]
    assert kinds(observation("PLT", 18, "10^9/L", system=LIS_LOCAL)) == [FindingKind.LOW]


def test_inr_has_no_unit_and_only_an_upper_limit() -> None:
    assert kinds(observation("6301-6", 4.5, None)) == [FindingKind.HIGH]
    assert kinds(observation("6301-6", 0.5, None)) == []


def test_results_not_yet_reported_are_not_checked() -> None:
    assert kinds(observation("2823-3", 7.5, status="registered")) == []
    assert kinds(observation("2823-3", 7.5, status="preliminary")) == [FindingKind.HIGH]


# -- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit"),
    [
        ("2345-7", 45, "mg/dL"),  # glucose in mg/dL: 45 mg/dL is 2.5 mmol/L, not compared
        ("2823-3", 6.8, None),  # a potassium without unit
        ("10839-9", 800, "ng/L"),  # troponin I rule is in ug/L
    ],
)
def test_a_value_in_another_unit_goes_to_a_person(
    code: str, value: float, unit: str | None
) -> None:
    (finding,) = check(observation(code, value, unit), patient())
    assert finding.kind is FindingKind.UNIT_MISMATCH
    assert not finding.critical
    assert "单位" in finding.text
    assert "人工核对" in finding.text


def test_unit_spellings_of_the_same_unit_are_accepted() -> None:
    for unit in ("10*9/L", "10^9/L", "×10^9/L"):
        assert kinds(observation("777-3", 25, unit)) == [FindingKind.LOW]
    assert kinds(observation("10839-9", 0.8, "μg/L")) == [FindingKind.HIGH]
    assert kinds(observation("10839-9", 0.8, "ng/mL")) == [FindingKind.HIGH]


def test_a_comparator_across_a_limit_is_indeterminate() -> None:
    below = observation("2823-3", 3.0)
    below["valueQuantity"]["comparator"] = "<"
    assert kinds(below) == [FindingKind.INDETERMINATE]
    below["valueQuantity"]["value"] = 2.0
    assert kinds(below) == [FindingKind.LOW]
    troponin = observation("10839-9", 0.01, "ug/L")
    troponin["valueQuantity"]["comparator"] = "<"
    assert kinds(troponin) == []


# -- coded results ---------------------------------------------------------------------------


def culture(**value: Any) -> Json:
    return observation("600-7", **value)


def test_positive_blood_culture_is_critical() -> None:
    positive = {"coding": [{"system": "http://snomed.info/sct", "code": "10828004"}]}
    (finding,) = check(culture(valueCodeableConcept=positive), patient())
    assert finding.kind is FindingKind.CODED
    assert finding.critical
    # an organism named is a positive culture
    organism = {
        "coding": [{"system": "http://snomed.info/sct", "code": "112283007"}],
        "text": "大肠埃希菌",
    }
    assert kinds(culture(valueCodeableConcept=organism)) == [FindingKind.CODED]


def test_negative_blood_culture_is_not_critical() -> None:
    no_growth = {"coding": [{"system": "http://snomed.info/sct", "code": "264868006"}]}
    assert kinds(culture(valueCodeableConcept=no_growth)) == []
    assert kinds(culture(valueString="培养5天未检出细菌")) == []
    assert kinds(culture(valueString="阴性")) == []
    # a positive report naming a Gram-negative organism is positive
    assert kinds(culture(valueString="需氧瓶阳性，革兰阴性杆菌")) == [FindingKind.CODED]
    assert kinds(culture(valueString="革兰阴性杆菌")) == [FindingKind.CODED]


def test_a_lab_flag_without_rule_still_reaches_a_person() -> None:
    lactate = observation("2524-7", 12.0)
    lactate["interpretation"] = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "HH",
                }
            ]
        }
    ]
    (finding,) = check(lactate, patient())
    assert (finding.kind, finding.test, finding.critical) == (FindingKind.LAB_FLAG, "2524-7", True)


# -- the corpus message ----------------------------------------------------------------------


def corpus_results(file: str) -> tuple[list[Json], Json]:
    manifest = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
    charset = next(e["charset"] for e in manifest if e["file"] == file)
    mapped = normalize(Message((CORPUS / file).read_bytes().decode(charset), charset))
    observations = [r for r in mapped.resources if r["resourceType"] == "Observation"]
    person = next(r for r in mapped.resources if r["resourceType"] == "Patient")
    return observations, person


async def test_the_critical_potassium_message_raises_one_alert() -> None:
    observations, person = corpus_results("31-lis-oru-r01-critical-k-enhanced.hl7")
    findings = [f for obs in observations for f in check(obs, person)]
    assert [(f.test, f.kind, f.value, f.band, f.sex) for f in findings] == [
        ("potassium", FindingKind.HIGH, "6.8 mmol/L", "adult", "female")
    ]
    desk = CriticalValueDesk(clock=Clock())
    screen: asyncio.Queue[AlertEvent] = asyncio.Queue()
    desk.subscribe(screen)
    alerts = [await desk.receive(obs, person) for obs in observations]
    raised = [a for a in alerts if a is not None]
    assert len(raised) == 1
    assert raised[0].observation == f"Observation/{observations[0]['id']}"
    assert raised[0].subject == observations[0]["subject"]["reference"]
    event = screen.get_nowait()
    assert event.step is Step.RAISED
    assert event.alert["text"].startswith("钾 6.8 mmol/L")
    assert screen.empty()
    assert not errors_of(event.audit)


# -- the desk --------------------------------------------------------------------------------


async def raised_desk(clock: Clock) -> tuple[CriticalValueDesk, str, list[AlertEvent]]:
    desk = CriticalValueDesk(clock=clock)
    seen: list[AlertEvent] = []

    async def on_event(event: AlertEvent) -> None:
        seen.append(event)

    desk.subscribe(on_event)
    alert = await desk.receive(observation("2823-3", 6.8, version="1"), patient())
    assert alert is not None
    return desk, alert.id, seen


async def test_acknowledgement_records_read_back_and_is_valid_fhir() -> None:
    clock = Clock()
    desk, alert_id, seen = await raised_desk(clock)
    clock.advance(minutes=4)
    alert = await desk.acknowledge(
        alert_id, by=TECH, clinician=NURSE, read_back="3床杨丽 血钾6.8 mmol/L"
    )
    assert alert.state is AlertState.ACKNOWLEDGED
    ack = alert.acknowledgement
    assert ack is not None
    assert (ack.by, ack.clinician, ack.at, ack.late) == (
        TECH,
        NURSE,
        START + timedelta(minutes=4),
        False,
    )
    event = seen[-1]
    assert event.step is Step.ACKNOWLEDGED
    communication = event.communication
    assert communication is not None
    assert desk.communications == [communication]
    assert not errors_of(communication)
    assert communication["payload"][1] == {"contentString": "复述：3床杨丽 血钾6.8 mmol/L"}
    assert communication["recipient"][0]["identifier"]["value"] == "2107"
    assert communication["sender"]["display"] == "梁思远"
    assert communication["sent"] == "2026-03-12T05:26:30+08:00"
    assert event.alert["acknowledgement"]["read_back"] == "3床杨丽 血钾6.8 mmol/L"
    audit = event.audit
    assert not errors_of(audit)
    assert audit["agent"][0]["who"]["identifier"]["value"] == "0499"
    assert audit["agent"][1]["who"]["display"] == "王芳"
    assert {"what": {"reference": f"Communication/{communication['id']}"}}.items() <= (
        audit["entity"][-1].items()
    )
    # acknowledged alerts no longer escalate
    clock.advance(hours=1)
    assert await desk.escalate_due() == []
    assert desk.next_due() is None


async def test_acknowledgement_needs_a_read_back_and_an_open_alert() -> None:
    clock = Clock()
    desk, alert_id, _ = await raised_desk(clock)
    with pytest.raises(ValueError, match="复述"):
        await desk.acknowledge(alert_id, by=TECH, clinician=NURSE, read_back="  ")
    with pytest.raises(ValueError, match="staff number"):
        await desk.acknowledge(alert_id, by=Staff("", "梁思远"), clinician=NURSE, read_back="ok")
    await desk.acknowledge(alert_id, by=TECH, clinician=NURSE, read_back="血钾6.8")
    with pytest.raises(AlertStateError):
        await desk.acknowledge(alert_id, by=TECH, clinician=NURSE, read_back="血钾6.8")
    with pytest.raises(UnknownAlertError):
        await desk.acknowledge("nope", by=TECH, clinician=NURSE, read_back="血钾6.8")


async def test_escalation_at_the_configured_times() -> None:
    clock = Clock()
    desk, alert_id, seen = await raised_desk(clock)
    assert desk.get(alert_id).due == START + timedelta(minutes=10)
    assert desk.next_due() == START + timedelta(minutes=10)
    clock.advance(minutes=9, seconds=59)
    assert await desk.escalate_due() == []
    clock.advance(seconds=1)
    assert [a.id for a in await desk.escalate_due()] == [alert_id]
    assert desk.get(alert_id).level == 1
    assert await desk.escalate_due() == []  # one event per level, not one per call
    clock.advance(minutes=10)
    await desk.escalate_due()
    clock.advance(minutes=10)
    await desk.escalate_due()
    escalations = [e for e in seen if e.step is Step.ESCALATED]
    assert [(e.alert["level"], e.notify, e.at - START) for e in escalations] == [
        (1, "检验科当班组长", timedelta(minutes=10)),
        (2, "临床科室主任", timedelta(minutes=20)),
        (3, "医务科（夜间、节假日总值班）", timedelta(minutes=30)),
    ]
    assert desk.next_due() is None
    for event in escalations:
        assert event.audit["action"] == "E"
        assert not errors_of(event.audit)
    clock.advance(minutes=2)
    alert = await desk.acknowledge(alert_id, by=TECH, clinician=NURSE, read_back="血钾6.8")
    assert alert.acknowledgement is not None
    assert alert.acknowledgement.late


async def test_a_late_check_catches_up_level_by_level() -> None:
    clock = Clock()
    desk, _, seen = await raised_desk(clock)
    clock.advance(minutes=45)
    await desk.escalate_due()
    assert [e.alert["level"] for e in seen if e.step is Step.ESCALATED] == [1, 2, 3]


async def test_a_correction_that_is_no_longer_critical_closes_the_alert() -> None:
    clock = Clock()
    desk, alert_id, seen = await raised_desk(clock)
    clock.advance(minutes=3)
    corrected = observation("2823-3", 4.6, status="corrected", version="2")
    assert await desk.receive(corrected, patient()) is desk.get(alert_id)
    alert = desk.get(alert_id)
    assert alert.state is AlertState.CLOSED
    assert alert.closed == START + timedelta(minutes=3)
    assert alert.close_reason == "更正结果不再危急：2823-3 4.6 mmol/L"
    assert desk.open_alerts() == []
    assert desk.for_observation("obs-1") is None
    assert [e.step for e in seen] == [Step.RAISED, Step.CLOSED]
    assert not errors_of(seen[-1].audit)
    clock.advance(minutes=30)
    assert await desk.escalate_due() == []
    with pytest.raises(AlertStateError):
        await desk.acknowledge(alert_id, by=TECH, clinician=NURSE, read_back="血钾")


async def test_a_still_critical_correction_keeps_one_alert() -> None:
    clock = Clock()
    desk, alert_id, seen = await raised_desk(clock)
    # the same version delivered again changes nothing
    assert await desk.receive(observation("2823-3", 6.8, version="1"), patient()) is not None
    corrected = observation("2823-3", 7.1, status="corrected", version="2")
    alert = await desk.receive(corrected, patient())
    assert alert is not None
    assert alert.id == alert_id
    assert [a.id for a in desk.open_alerts()] == [alert_id]
    assert alert.version == "2"
    assert alert.findings[0].value == "7.1 mmol/L"
    assert alert.due == START + timedelta(minutes=10)  # the deadline runs from the first report
    # an older version arriving late is ignored
    await desk.receive(observation("2823-3", 6.8, version="1"), patient())
    assert desk.get(alert_id).version == "2"
    assert [e.step for e in seen] == [Step.RAISED, Step.UPDATED]


async def test_a_withdrawn_result_closes_the_alert() -> None:
    desk, alert_id, _ = await raised_desk(Clock())
    await desk.receive(observation("2823-3", 6.8, status="entered-in-error", version="2"))
    assert desk.get(alert_id).close_reason == "结果已撤销"


async def test_a_unit_mismatch_is_dismissed_by_a_person() -> None:
    clock = Clock()
    desk = CriticalValueDesk(clock=clock)
    alert = await desk.receive(observation("2345-7", 45, "mg/dL"), patient())
    assert alert is not None
    assert alert.findings[0].kind is FindingKind.UNIT_MISMATCH
    assert not alert.critical
    clock.advance(minutes=40)
    assert await desk.escalate_due() == []  # the lab checks it; nobody else is called
    assert desk.next_due() is None
    await desk.dismiss(alert.id, by=TECH, reason="换算为2.5 mmol/L，未达危急值")
    assert alert.state is AlertState.CLOSED
    assert desk.audit[-1]["agent"][0]["who"]["identifier"]["value"] == "0499"
    assert all(not errors_of(record) for record in desk.audit)


async def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    desk = CriticalValueDesk(clock=Clock())

    async def broken(event: AlertEvent) -> None:
        raise RuntimeError("screen gone")

    full: asyncio.Queue[AlertEvent] = asyncio.Queue(maxsize=1)
    full.put_nowait(AlertEvent(Step.RAISED, START, {"id": "x"}, {}))
    working: asyncio.Queue[AlertEvent] = asyncio.Queue()
    desk.subscribe(broken)
    desk.subscribe(full)
    unsubscribe = desk.subscribe(working)
    await desk.receive(observation("2823-3", 6.8), patient())
    assert working.qsize() == 1
    unsubscribe()
    await desk.receive(observation("2823-3", 1.9, id_="obs-2"), patient())
    assert working.qsize() == 1


async def test_the_clock_must_be_timezone_aware() -> None:
    desk = CriticalValueDesk(clock=lambda: datetime(2026, 3, 12, 5, 0))
    with pytest.raises(ValueError, match="timezone"):
        await desk.receive(observation("2823-3", 6.8), patient())


def test_the_rules_cover_the_required_tests() -> None:
    rules = load_rules()
    assert {t.id for t in rules.tests} >= {
        "potassium",
        "glucose",
        "hemoglobin",
        "platelets",
        "inr",
        "troponin-i",
        "blood-culture",
    }
    assert [s.level for s in rules.policy.escalation] == [1, 2, 3]


async def test_settled_alerts_are_forgotten_after_a_while_open_ones_never() -> None:
    clock = Clock()
    desk, acknowledged, _ = await raised_desk(clock)
    await desk.acknowledge(acknowledged, by=TECH, clinician=NURSE, read_back="血钾6.8")
    still_open = await desk.receive(observation("2823-3", 7.1, id_="obs-2"), patient())
    assert still_open is not None
    clock.advance(hours=2)
    assert desk.forget(START) == []  # acknowledged after START: kept
    assert [a.id for a in desk.forget(clock())] == [acknowledged]
    with pytest.raises(UnknownAlertError):
        desk.get(acknowledged)
    assert desk.for_observation("obs-1") is None
    assert [a.id for a in desk.open_alerts()] == [still_open.id]


async def test_the_next_escalation_is_the_earliest_step_of_an_alert_still_open() -> None:
    clock = Clock()
    desk, first, _ = await raised_desk(clock)
    clock.advance(minutes=2)
    second = await desk.receive(observation("2823-3", 7.1, id_="obs-2"), patient())
    assert second is not None
    first_step = desk.policy.escalation[0].after
    assert desk.next_due() == START + first_step
    await desk.acknowledge(first, by=TECH, clinician=NURSE, read_back="血钾6.8")
    assert desk.next_due() == START + timedelta(minutes=2) + first_step
    clock.advance(hours=3)
    assert [a.id for a in await desk.escalate_due()] == [second.id]
    assert desk.get(second.id).level == len(desk.policy.escalation)
    assert desk.next_due() is None
