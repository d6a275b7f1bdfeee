"""Person-only ADT (A28, A31), addresses by type, PV2, and the master files (MFN^M02 staff,
MFN^M05 locations), field by field, with the corpus's messages in the HIS's style; the master
files and the messages that only name a doctor or a bed meet on the same resources."""

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from tests.unit.corpus import corpus, of

BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
PLANNED = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.planned"


def test_a28_files_the_person_without_a_visit_and_knows_home_from_birth_place() -> None:
    resources = corpus("47-")
    assert {r["resourceType"] for r in resources} == {"Patient"}  # PV1-2 N: no Encounter
    (patient,) = resources
    (home,) = patient["address"]
    assert (home["use"], home["type"], home["district"], home["postalCode"]) == (
        "home", "physical", "330602", "312000",
    )  # fmt: skip
    assert home["line"] == ["越城区胜利东路88号", "3幢2单元501室"]
    born = next(e for e in patient["extension"] if e["url"] == BIRTH_PLACE)
    assert born["valueAddress"]["district"] == "330603"  # 柯桥区: 出生地, not an address
    assert patient["telecom"] == [{"system": "phone", "value": "13957512345", "use": "mobile"}]


def test_a31_updates_the_person_with_a_registered_address_and_a_work_phone() -> None:
    resources = corpus("48-")
    (patient,) = of(resources, "Patient")
    assert of(resources, "Encounter") == []
    assert [(a["use"], a["line"][0]) for a in patient["address"]] == [
        ("home", "越城区解放北路200号"),
        ("home", "越城区胜利东路88号"),  # XAD-7 L: the household registration (户口地址)
    ]
    assert {"system": "phone", "value": "0575-88123456", "use": "work"} in patient["telecom"]
    assert of(resources, "AllergyIntolerance")[0]["code"]["text"] == "青霉素"
    assert patient["id"] == of(corpus("47-"), "Patient")[0]["id"]  # the same person


def test_pv2_gives_the_reason_and_the_expected_stay() -> None:
    (encounter,) = of(corpus("49-"), "Encounter")
    (reason,) = encounter["reasonCode"]
    assert reason["coding"][0]["code"] == "K35.800"
    assert reason["coding"][0]["display"] == "急性阑尾炎"
    planned = {e["url"]: e["valueDateTime"] for e in encounter["extension"]}
    assert planned == {
        f"{PLANNED}StartDate": "2026-12-03T10:00:00+08:00",
        f"{PLANNED}EndDate": "2026-12-08T10:00:00+08:00",
    }
    assert "择期手术前一日入院" in encounter["text"]["div"]


def test_the_staff_file_owns_the_practitioners_the_messages_name() -> None:
    resources = corpus("50-")
    people = {p["identifier"][0]["value"]: p for p in of(resources, "Practitioner")}
    assert set(people) == {"1402", "1105"}
    wang, zhao = people["1402"], people["1105"]
    assert (wang["name"][0]["text"], wang["gender"], wang["active"]) == ("王建国", "male", True)
    assert {"system": "urn:jianhu:sid:staff-id:his", "value": "D330600123"} in wang["identifier"]
    assert zhao["active"] is False  # MDC: deactivated, kept
    roles = {r["practitioner"]["reference"]: r for r in of(resources, "PractitionerRole")}
    role = roles[f"Practitioner/{wang['id']}"]
    assert role["specialty"][0]["coding"][0]["code"] == "0501"
    assert role["code"][0]["coding"][0]["code"] == "1"
    # the admission that names doctor 1402 in PV1-7 points at the same Practitioner
    (encounter,) = of(corpus("49-"), "Encounter")
    assert encounter["participant"][0]["individual"]["reference"] == f"Practitioner/{wang['id']}"


def test_the_location_file_owns_the_wards_and_beds_the_visits_name() -> None:
    resources = corpus("51-")
    places = {p["name"]: p for p in of(resources, "Location")}
    ward, bed = places["普外科病区"], places["普外科病区0506室12床"]
    assert ward["identifier"] == [{"system": "urn:jianhu:sid:ward:his", "value": "B0501"}]
    assert bed["physicalType"]["coding"][0]["code"] == "bd"
    assert bed["partOf"]["reference"].startswith("Location/loc-")
    assert places["呼吸内科病区0312室09床"]["status"] == "inactive"  # MDL: kept, inactive
    # the visit in bed 12 of room 0506 of ward B0501 points at the same Locations
    (encounter,) = of(corpus("49-"), "Encounter")
    named = {e["location"]["reference"] for e in encounter["location"]}
    assert {f"Location/{ward['id']}", f"Location/{bed['id']}"} <= named


def test_a_master_file_without_its_records_is_refused() -> None:
    import pytest

    from hub.base.errors import MappingError

    empty = "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20261203||MFN^M05^MFN_M05|X1|P|2.5\rMFI|LOC\r"
    with pytest.raises(MappingError, match="no MFE/LOC record"):
        normalize(Message(empty))
    no_loc = empty + "MFE|MAD|20261203||B1^^^JHYY|PL\r"
    with pytest.raises(MappingError, match="has no LOC segment"):
        normalize(Message(no_loc))
