"""Specimen lifecycle: stages from the corpus order and result as the normalizer maps them, from
hand-made LIS status messages, out of order, and corrected."""

from datetime import datetime, timedelta

import pytest

from hub.base.hospital_time import HOSPITAL
from hub.hl7v2.mapping import normalize
from hub.hl7v2.mapping.common import stable_id
from hub.hl7v2.message import Message
from hub.lab.lifecycle import (
    LifecycleEvent,
    Priority,
    Source,
    SpecimenTrack,
    Stage,
)
from hub.lab.lifecycle_fhir import events_from_fhir
from hub.lab.lifecycle_hl7 import container_statuses, events_from_hl7
from tests.unit.test_hl7v2_mapping import message_of

ORDER = "17-his-oml-o21-flu-order.hl7"
RESULT = "25-lis-oru-r01-flu-spm.hl7"
TUBE = stable_id("spc", "HIS", "2603050301")  # the id the normalizer gives the flu swab
SEEN = datetime(2026, 3, 5, 9, 41, 10, tzinfo=HOSPITAL)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 3, 5, hh, mm, ss, tzinfo=HOSPITAL)


def events_of(file: str) -> list[LifecycleEvent]:
    message = message_of(file)
    return events_from_fhir(normalize(message).resources, SEEN) + events_from_hl7(message)


def track_of(*events: LifecycleEvent) -> SpecimenTrack:
    track = SpecimenTrack(TUBE)
    for event in events:
        track.apply(event)
    return track


def test_order_gives_ordered_collected_received_with_the_tube_details() -> None:
    track = track_of(*events_of(ORDER))
    assert track.times == {
        Stage.ORDERED: at(8, 20, 40),  # ORC-9
        Stage.COLLECTED: at(8, 15),  # SPM-17
        Stage.RECEIVED: at(8, 29),  # SPM-18
    }
    assert track.stage is Stage.RECEIVED
    assert track.barcode == "2603050301"
    assert track.priority is Priority.STAT  # TQ1-9 S
    assert track.source is Source.OUTPATIENT  # PV1-2 O
    assert track.department == "儿科"
    assert track.test_group == "感染免疫"  # FLUAB in lab-lifecycle.json
    assert track.patient is not None
    assert track.patient.startswith("Patient/pat-")


def test_result_gives_final_reviewed_and_reported_on_the_same_tube() -> None:
    events = events_of(RESULT)
    assert {e.specimen for e in events} == {TUBE}
    track = track_of(*events_of(ORDER), *events)
    assert track.times[Stage.FINAL] == at(9, 40)  # OBR-22 issued
    assert track.times[Stage.REVIEWED] == at(9, 40)  # OBR-25 F with OBR-32 周明
    assert track.times[Stage.REPORTED] == at(9, 41, 8)  # MSH-7, no zone: China
    assert track.stage is Stage.REPORTED
    assert track.corrections == []


def test_result_before_order_does_not_move_back_but_fills_in_times() -> None:
    track = track_of(*events_of(RESULT), *events_of(ORDER))
    assert track.stage is Stage.REPORTED
    assert track.times[Stage.ORDERED] == at(8, 20, 40)
    assert track.priority is Priority.STAT  # the order's details arrive with it


def test_stage_keeps_its_first_time() -> None:
    first = LifecycleEvent(Stage.RECEIVED, at(8, 29), "a", specimen=TUBE)
    again = LifecycleEvent(Stage.RECEIVED, at(8, 50), "b", specimen=TUBE)
    earlier_stage = LifecycleEvent(Stage.COLLECTED, at(8, 40), "c", specimen=TUBE)
    track = track_of(first, again, earlier_stage)
    assert track.times[Stage.RECEIVED] == at(8, 29)
    assert track.stage is Stage.RECEIVED
    assert track.times[Stage.COLLECTED] == at(8, 40)


def test_corrected_final_keeps_the_first_time_and_records_the_correction() -> None:
    final = [e for e in events_of(RESULT) if e.stage is Stage.FINAL]
    report = next(
        r
        for r in normalize(message_of(RESULT)).resources
        if r["resourceType"] == "DiagnosticReport"
    )
    corrected = {**report, "status": "corrected", "issued": "2026-03-05T10:30:00+08:00"}
    later = events_from_fhir([corrected], at(10, 31))
    track = track_of(*final, *later)
    assert track.times[Stage.FINAL] == at(9, 40)
    assert [(c.stage, c.at) for c in track.corrections] == [(Stage.FINAL, at(10, 30))]


SSU_MSH = "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20260305083100||SSU^U03^SSU_U03|S{n}|P|2.5"


def ssu(n: int, code: str, when: str, barcode: str = "2603050301") -> Message:
    return Message(
        "\r".join(
            [
                SSU_MSH.format(n=n),
                f"EQU|LIS01|{when}",
                f"SAC|||{barcode}|||||{code}",
            ]
        )
    )


def test_ssu_status_codes_drive_the_lis_stages() -> None:
    events = [
        *events_from_hl7(ssu(1, "REG", "20260305083100")),
        *events_from_hl7(ssu(2, "TST", "20260305084000")),
        *events_from_hl7(ssu(3, "PRT", "20260305100000")),
    ]
    assert [(e.stage, e.at, e.specimen) for e in events] == [
        (Stage.REGISTERED, at(8, 31), TUBE),  # no namespace: the LIS echoes the HIS barcode
        (Stage.IN_TEST, at(8, 40), TUBE),
        (Stage.PRINTED, at(10, 0), TUBE),
    ]
    assert events[0].origin == "SSU^U03 SAC-8"


def test_ssu_with_an_unconfigured_code_or_sender_says_nothing() -> None:
    assert events_from_hl7(ssu(1, "ZZZ", "20260305083100")) == []
    # another analyser line falls back to the default (HL7 table 0370 codes)
    other = Message(f"{SSU_MSH.replace('|LIS|', '|TLA|').format(n=9)}\rSAC|||B7^HIS|||||REG")
    assert events_from_hl7(other) == []
    identified = Message(f"{SSU_MSH.replace('|LIS|', '|TLA|').format(n=9)}\rSAC|||B7^HIS|||||I")
    (event,) = events_from_hl7(identified)
    assert (event.stage, event.specimen) == (Stage.RECEIVED, stable_id("spc", "HIS", "B7"))
    assert event.at == at(8, 31)  # no EQU-2: MSH-7


def test_ssu_cancel_withdraws_the_tube() -> None:
    (cancel,) = events_from_hl7(ssu(1, "CAN", "20260305083100"))
    assert cancel.cancelled
    assert track_of(*events_of(ORDER), cancel).cancelled


def test_orl_from_the_lis_registers_the_order_without_spm() -> None:
    orl = Message(
        "\r".join(
            [
                "MSH|^~\\&|LIS|JHYY|HIS|JHYY|20260305083000||ORL^O22^ORL_O22|L1|P|2.5",
                "MSA|AA|HIS202603050820400098",
                "ORC|OK|2603050301001^HIS|2603050035^LIS||IP||||20260305083015",
            ]
        )
    )
    events = events_from_hl7(orl)
    order = stable_id("req", "HIS", "2603050301001")
    assert [(e.stage, e.at, e.specimen, e.request) for e in events] == [
        (Stage.REGISTERED, at(8, 30, 15), None, order),  # ORC-1 OK, timed by ORC-9
        (Stage.IN_TEST, at(8, 30, 15), None, order),  # ORC-5 IP
    ]


def test_task_and_accession_identifier_register_the_tube() -> None:
    task = {
        "resourceType": "Task",
        "id": "t1",
        "status": "completed",
        "intent": "order",
        "businessStatus": {"text": "核收"},
        "focus": {"reference": f"Specimen/{TUBE}"},
        "lastModified": "2026-03-05T08:33:00+08:00",
    }
    specimen = {
        "resourceType": "Specimen",
        "id": TUBE,
        "accessionIdentifier": {"system": "urn:jianhu:sid:accession:lis", "value": "A1"},
    }
    (by_task,) = events_from_fhir([task], SEEN)
    (by_accession,) = events_from_fhir([specimen], at(8, 34))
    assert (by_task.stage, by_task.at, by_task.specimen) == (Stage.REGISTERED, at(8, 33), TUBE)
    assert (by_accession.stage, by_accession.at) == (Stage.REGISTERED, at(8, 34))


def test_cancelled_order_withdraws_only_a_tube_no_other_order_needs() -> None:
    base = {"resourceType": "ServiceRequest", "intent": "order", "subject": {}}
    tube = {"specimen": [{"reference": f"Specimen/{TUBE}"}]}
    liver = {
        **base,
        **tube,
        "id": "liver",
        "status": "active",
        "authoredOn": "2026-03-05T08:00:00+08:00",
    }
    kidney = {**liver, "id": "kidney"}
    track = track_of(*events_from_fhir([liver, kidney], SEEN))
    for event in events_from_fhir([{**liver, "status": "revoked"}], SEEN):
        track.apply(event)
    assert not track.cancelled  # 肾功能 still wants the serum tube
    for event in events_from_fhir([{**kidney, "status": "revoked"}], SEEN):
        track.apply(event)
    assert track.cancelled


def test_events_need_aware_times_and_a_key() -> None:
    with pytest.raises(ValueError, match="timezone"):
        LifecycleEvent(Stage.RECEIVED, datetime(2026, 3, 5, 8, 29), "x", specimen=TUBE)
    with pytest.raises(ValueError, match="names"):
        LifecycleEvent(Stage.RECEIVED, at(8, 29), "x")


def test_started_uses_the_earliest_stage_when_the_start_was_skipped() -> None:
    track = track_of(
        LifecycleEvent(Stage.IN_TEST, at(9, 0), "x", specimen=TUBE),
        LifecycleEvent(Stage.REGISTERED, at(8, 50), "x", specimen=TUBE),
    )
    assert track.started(Stage.RECEIVED, Stage.FINAL) == at(8, 50)
    assert track.started(Stage.FINAL, Stage.REPORTED) is None
    assert at(9, 0) - track.started(Stage.RECEIVED, Stage.FINAL) == timedelta(minutes=10)  # type: ignore[operator]


def test_report_with_an_interpreter_is_reviewed_and_a_preliminary_result_counts() -> None:
    report = next(
        r
        for r in normalize(message_of(RESULT)).resources
        if r["resourceType"] == "DiagnosticReport"
    )
    preliminary = {**report, "status": "preliminary", "issued": "2026-03-05T09:10:00+08:00"}
    reviewed = {**report, "resultsInterpreter": [{"display": "周明"}]}
    track = track_of(
        *events_from_fhir([preliminary], at(9, 11)), *events_from_fhir([reviewed], SEEN)
    )
    assert track.times[Stage.PRELIMINARY] == at(9, 10)
    assert track.times[Stage.FINAL] == track.times[Stage.REVIEWED] == at(9, 40)
    assert track.times[Stage.REPORTED] == SEEN  # when the hub stored the released report


def test_an_ssu_container_status_carries_owner_and_accession() -> None:
    message = Message(
        "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20260305083100||SSU^U03^SSU_U03|S1|P|2.5\r"
        "EQU|LIS01|20260305083000\r"
        "SAC||2603050042^LIS|HJ260305000001^pooled-collection|||||REG\r"
        "SAC|||2603050302|||||NOPE\r"  # a code the LIS's configuration does not know
    )
    (status,) = container_statuses(message)
    assert (status.barcode, status.owner, status.stage, status.accession) == (
        "HJ260305000001",
        "pooled-collection",
        "registered",
        "2603050042",
    )
    assert status.at == at(8, 30)
