"""Pooled testing (混检), the pure parts: ID-card reading, the FHIR resources of a pool tube,
the admission rules and the label contents."""

from datetime import UTC, date, datetime

import pytest

from fhir_profiles.identifiers import RESIDENT_ID_CARD
from fhir_profiles.validation import validate
from hub.base.hospital_time import HOSPITAL
from hub.lab.labels import label_for
from hub.lab.pool_tube import (
    AlreadyInTubeError,
    IdCardError,
    MemberState,
    Person,
    PoolingError,
    Tube,
    TubeClosedError,
    TubeFullError,
    TubeMember,
    closed,
    load_rules,
    member_specimen,
    new_barcode,
    patient_resource,
    pool_specimen,
    read_id_card,
    recall_task,
    refuse_addition,
    tag_of,
    tagged,
)

NOW = datetime(2026, 11, 3, 9, 30, tzinfo=HOSPITAL)
RULES = load_rules()
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def card(first17: str) -> str:
    """A resident ID number with its GB 11643 check character."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def tube(members: int, **pool_changes: object) -> Tube:
    pool = {**pool_specimen("HJ261103000001", "鉴湖社区采样点", NOW, RULES), **pool_changes}
    people = tuple(
        TubeMember(member_specimen(pool, f"Patient/p{n}", NOW), MemberState.POOLED)
        for n in range(members)
    )
    return Tube("HJ261103000001", pool, 1, people, RULES)


def test_an_id_card_gives_birth_date_and_sex() -> None:
    number = card("33060219850312001")  # 17th digit 1: male
    found = read_id_card(f" {number.lower()} ")
    assert found.number == number
    assert found.birth_date == date(1985, 3, 12)
    assert found.gender == "male"
    assert read_id_card(card("33060219900101002")).gender == "female"


def test_a_wrong_check_character_is_refused() -> None:
    good = card("33060219850312001")
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(IdCardError, match="check character"):
        read_id_card(wrong)


@pytest.mark.parametrize(
    "scanned",
    [
        "33060219850312001",  # 17 characters
        "33060219851332001X",  # month 13
        "3306021985031200AX",
    ],
)
def test_a_malformed_id_card_is_refused(scanned: str) -> None:
    with pytest.raises(IdCardError):
        read_id_card(scanned)


def test_a_new_patient_carries_card_name_phone_address_and_is_valid() -> None:
    number = card("33060219850312001")
    person = Person(number, "欧阳明", "13800000000", "浙江省绍兴市越城区鉴湖路1号")
    patient = patient_resource(read_id_card(number), person)
    assert patient["identifier"] == [{"system": RESIDENT_ID_CARD, "value": number}]
    assert patient["name"][0]["text"] == "欧阳明"
    assert patient["telecom"][0]["value"] == "13800000000"
    assert patient["address"][0]["text"].startswith("浙江省")
    assert (patient["birthDate"], patient["gender"]) == ("1985-03-12", "male")
    assert validate(patient) == []


def test_the_pool_and_its_people_are_valid_specimens_and_tasks() -> None:
    pool = pool_specimen("HJ261103000001", "鉴湖社区采样点", NOW, RULES)
    member = member_specimen(pool, "Patient/p1", NOW)
    task = recall_task(pool, member, NOW, RULES)
    assert member["parent"] == [{"reference": f"Specimen/{pool['id']}"}]
    assert member["subject"] == {"reference": "Patient/p1"}
    assert "subject" not in pool
    assert pool["type"]["text"] == "咽拭子"
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["for"] == {"reference": "Patient/p1"}
    assert task["focus"] == {"reference": f"Specimen/{pool['id']}"}
    assert task["code"]["coding"][0]["display"] == "re-test single tube"
    for resource in (pool, member, task, closed(pool, NOW), tagged(pool, "urn:x", "y")):
        assert validate(resource) == [], resource


def test_times_are_shanghai_and_must_be_aware() -> None:
    pool = pool_specimen("HJ1234", "x", datetime(2026, 11, 3, 1, 0, tzinfo=UTC), RULES)
    assert pool["collection"]["collectedPeriod"]["start"] == "2026-11-03T09:00:00+08:00"
    with pytest.raises(ValueError, match="timezone"):
        pool_specimen("HJ1234", "x", datetime(2026, 11, 3, 1, 0), RULES)


def test_a_barcode_must_be_printable() -> None:
    with pytest.raises(PoolingError):
        pool_specimen("混检 1", "x", NOW, RULES)
    assert new_barcode(NOW).startswith("HJ261103")
    assert len(new_barcode(NOW)) == 14


def test_ten_people_fit_and_the_eleventh_is_refused() -> None:
    assert RULES.pool_size == 10
    refuse_addition(tube(9), "Patient/new")  # the 10th
    with pytest.raises(TubeFullError, match="10"):
        refuse_addition(tube(10), "Patient/new")


def test_the_same_person_twice_is_refused() -> None:
    with pytest.raises(AlreadyInTubeError):
        refuse_addition(tube(3), "Patient/p1")


def test_a_closed_tube_takes_nobody() -> None:
    shut = tube(2)
    shut = Tube(shut.barcode, closed(shut.specimen, NOW), 2, shut.members, RULES)
    with pytest.raises(TubeClosedError):
        refuse_addition(shut, "Patient/new")


def test_a_tag_replaces_the_earlier_tag_of_its_system() -> None:
    pool = tagged(pool_specimen("HJ1234", "x", NOW, RULES), "urn:s", "a")
    pool = tagged({**pool, "meta": {**pool["meta"], "versionId": "3"}}, "urn:s", "b")
    assert tag_of(pool, "urn:s") == "b"
    assert pool["meta"] == {"tag": [{"system": "urn:s", "code": "b"}]}


def test_the_label_has_no_names_only_the_count() -> None:
    label = label_for(tube(7), NOW)
    assert (label.barcode, label.people) == ("HJ261103000001", 7)
    assert label.collection_point == "鉴湖社区采样点"
    assert label.time == "2026-11-03 09:30"
