"""SIU^S12-S15 to Appointment: one Appointment per booking, updated by reschedule, modification
and cancel; times from SCH-11 or the resource segments; patient, doctor and room as
participants."""

import pytest

from hub.base.json import Json
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from tests.unit.test_hl7v2_mapping import message_of

PID = "PID|1||10023456^^^JHYY^PI||张^伟||19680412|M"


def booking(file: str) -> Json:
    (found,) = [
        r for r in normalize(message_of(file)).resources if r["resourceType"] == "Appointment"
    ]
    return found


def hand_written(event: str, *segments: str) -> Json:
    msh = f"MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260310200110||SIU^{event}^SIU_S12|T1|P|2.4"
    resources = normalize(Message("\r".join((msh, *segments)))).resources
    (found,) = [r for r in resources if r["resourceType"] == "Appointment"]
    return found


def test_booking_maps_times_codes_and_participants() -> None:
    clinic = booking("41-his-siu-s12-booking.hl7")
    assert clinic["status"] == "booked"
    assert (clinic["start"], clinic["end"]) == (
        "2026-03-16T09:00:00+08:00",
        "2026-03-16T09:15:00+08:00",
    )
    assert clinic["minutesDuration"] == 15
    assert [(i["system"], i["value"]) for i in clinic["identifier"]] == [
        ("urn:jianhu:sid:placer-appointment:his", "YY2026031000123"),
        ("urn:jianhu:sid:filler-appointment:his", "YY2026031000123"),
    ]
    assert clinic["serviceType"][0]["coding"][0]["code"] == "110200002"  # AIS-3
    assert clinic["reasonCode"][0]["coding"][0]["code"] == "FU"  # SCH-7 复诊
    assert clinic["appointmentType"]["coding"][0]["code"] == "NORMAL"  # SCH-8
    assert clinic["description"] == "王建国专家门诊"
    patient, room, doctor = clinic["participant"]
    assert patient["actor"]["reference"].startswith("Patient/")
    assert patient["status"] == "accepted"
    assert room["actor"] == {"type": "Location", "display": "呼吸内科门诊 诊室5"}
    assert doctor["actor"]["display"] == "王建国"
    assert doctor["actor"]["identifier"]["value"] == "1023"
    assert "reference" not in doctor["actor"]  # no Practitioner resource behind it


def test_modification_updates_the_booked_appointment() -> None:
    booked = booking("41-his-siu-s12-booking.hl7")
    modified = booking("43-his-siu-s14-modify-enhanced.hl7")
    assert modified["id"] == booked["id"]
    assert modified["status"] == "booked"
    assert modified["participant"][1]["actor"]["display"] == "钱文军"  # 替诊: another doctor


def test_reschedule_moves_the_same_appointment() -> None:
    mri = booking("42-ris-siu-s13-reschedule-mri.hl7")
    assert mri["start"] == "2026-03-14T14:00:00+08:00"
    assert mri["end"] == "2026-03-14T14:30:00+08:00"
    assert mri["identifier"][1] == {
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]
        },
        "system": "urn:jianhu:sid:filler-appointment:ris",
        "value": "MRYY260312007",
    }
    assert mri["comment"].startswith("原预约 2026-03-13 09:30")
    assert mri["participant"][1]["actor"]["display"] == "放射科 3.0T磁共振室"
    first_booking = hand_written(
        "S12",
        "SCH|JC2603120044^HIS|MRYY260312007^RIS||||NEW|MRI^磁共振检查^L||30|min"
        "|^^30^20260313093000^20260313100000",
        PID,
    )
    assert first_booking["id"] == mri["id"]
    assert first_booking["start"] == "2026-03-13T09:30:00+08:00"


def test_cancel_keeps_the_booking_and_why_it_was_cancelled() -> None:
    cancelled = booking("44-his-siu-s15-cancel.hl7")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["text"] == "患者取消"
    assert cancelled["start"] == "2026-03-17T10:00:00+08:00"
    # AIS-2 D releases the resource with the appointment; it still says what was booked
    assert cancelled["serviceType"][0]["coding"][0]["code"] == "110200001"


def test_times_come_from_the_resource_segments_without_sch_11() -> None:
    found = hand_written(
        "S12",
        "SCH|P1^HIS|F1^HIS",
        PID,
        "RGS|1|A",
        "AIS|1|A|B-US^腹部彩超^L|20260320080000|||20|min",
        "AIL|1|A|US01^超声3室^^JHYY|||20260320080000|||30",
    )
    assert found["start"] == "2026-03-20T08:00:00+08:00"
    assert found["end"] == "2026-03-20T08:30:00+08:00"  # the latest resource end
    assert found["minutesDuration"] == 30


def test_a_resource_taken_off_the_booking_is_no_participant() -> None:
    found = hand_written(
        "S14",
        "SCH|P1^HIS|F1^HIS|||||||15|min|^^15^20260316090000",
        PID,
        "AIP|1|D|1023^王^建国|DOC^医生",
        "AIP|2|A|1057^钱^文军|DOC^医生",
    )
    assert [p["actor"].get("display") for p in found["participant"][1:]] == ["钱文军"]
    assert found["end"] == "2026-03-16T09:15:00+08:00"  # SCH-11 start + SCH-9 duration


@pytest.mark.parametrize(
    ("segments", "problem"),
    [
        ((PID,), "no SCH"),
        (("SCH||||||NEW", PID), "no appointment id"),
        (("SCH|P1^HIS|F1^HIS", PID), "appointment time"),
        (("SCH|P1^HIS|F1^HIS|||||||||^^15^20260316090000^20260316091500",), "PID"),
    ],
)
def test_bookings_the_mapping_cannot_use_are_refused(
    segments: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        hand_written("S12", *segments)
