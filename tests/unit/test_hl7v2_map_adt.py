"""ADT beyond Patient and Encounter: Condition (DG1) with Encounter.diagnosis, AllergyIntolerance
(AL1), Coverage and its payer Organization (IN1), RelatedPerson (NK1), and the PV1 fields the
Encounter now carries (structured location, transfer history, doctors, department, 入院途径,
离院方式). Corpus messages first, then hand-made ones for resends and bad input."""

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_profiles.validation import validate
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))

CN_ICD10 = "urn:jianhu:codesystem:icd-10-cn-clinical"
V2_0052 = "http://terminology.hl7.org/CodeSystem/v2-0052"
ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
INSURANCE_CARD = "urn:jianhu:sid:insurance-card"

Resource = dict[str, Any]


def corpus(file: str) -> list[Resource]:
    entry = next(e for e in MANIFEST if e["file"] == file)
    text = (CORPUS / file).read_bytes().decode(entry["charset"])
    return normalize(Message(text, entry["charset"])).resources


def of_type(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["resourceType"] == kind]


def one(resources: list[Resource], kind: str) -> Resource:
    found = of_type(resources, kind)
    assert len(found) == 1, [r["id"] for r in found]
    return found[0]


def codes(concept: Resource) -> dict[str, str]:
    return {c["system"]: c["code"] for c in concept.get("coding", [])}


def at(encounter: Resource, physical_type: str) -> list[Resource]:
    return [e for e in encounter["location"] if codes(e["physicalType"])[PHYSICAL] == physical_type]


PID = "PID|1||10023456^^^JHYY^PI~330602196804120315^^^CHN^NNCHN||张^伟||19680412|M"
PV1 = "PV1|1|I|B0301^0312^03^JHYY^^^^^呼吸内科病区||||||||||||||||ZY2026004512^^^JHYY^VN"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment from field numbers, so a test reads "DG1-21" instead of counting bars."""
    return "|".join([name, *(fields.get(n, "") for n in range(1, max(fields) + 1))])


def adt(*segments: str, event: str = "A08", sender: str = "HIS", pv1: str | None = PV1) -> Message:
    lines = [
        f"MSH|^~\\&|{sender}|JHYY|JIANHU|JHYY|20260305100000||ADT^{event}|T{event}|P|2.4",
        f"EVN|{event}|20260305100000",
        PID,
        *([pv1] if pv1 else []),
        *segments,
    ]
    return Message("\r".join(lines))


def mapped(message: Message) -> list[Resource]:
    resources = normalize(message).resources
    for resource in resources:
        errors = [i.diagnostics for i in validate(resource) if i.severity in ("error", "fatal")]
        assert not errors, (resource["resourceType"], errors)
    return resources


# --- DG1 -> Condition ---


def test_admission_diagnoses_keep_the_chinese_icd10_code_and_the_diagnosis_type() -> None:
    resources = corpus("01-his-adt-a01-admit-resp.hl7")
    encounter = one(resources, "Encounter")
    pneumonia, hypertension = of_type(resources, "Condition")
    assert pneumonia["code"]["coding"] == [
        {"system": CN_ICD10, "code": "J18.900", "display": "肺炎"}
    ]
    assert codes(hypertension["code"]) == {CN_ICD10: "I10.x00"}
    assert [codes(c) for c in pneumonia["category"]] == [
        {"http://terminology.hl7.org/CodeSystem/condition-category": "encounter-diagnosis"},
        {V2_0052: "A"},
    ]
    assert codes(pneumonia["clinicalStatus"]).popitem()[1] == "active"
    assert codes(pneumonia["verificationStatus"]).popitem()[1] == "provisional"
    assert pneumonia["recordedDate"] == "2026-03-02"
    assert "onsetDateTime" not in pneumonia
    assert pneumonia["encounter"] == {"reference": f"Encounter/{encounter['id']}"}
    assert [(d["condition"]["reference"], codes(d["use"])) for d in encounter["diagnosis"]] == [
        (f"Condition/{pneumonia['id']}", {ROLE: "AD", V2_0052: "A"}),
        (f"Condition/{hypertension['id']}", {V2_0052: "W"}),  # "working" has no FHIR role
    ]


def test_discharge_diagnoses_are_final_and_confirmed() -> None:
    resources = corpus("03-his-adt-a03-discharge.hl7")
    conditions = of_type(resources, "Condition")
    assert [codes(c["code"])[CN_ICD10] for c in conditions] == ["I50.900", "E11.900"]
    assert {codes(c["verificationStatus"]).popitem()[1] for c in conditions} == {"confirmed"}
    assert all("recordedDate" not in c for c in conditions)  # DG1-5 is empty there
    diagnosis = one(resources, "Encounter")["diagnosis"]
    assert [codes(d["use"])[ROLE] for d in diagnosis] == ["DD", "DD"]


def test_the_same_diagnosis_resent_with_other_set_ids_updates_one_condition() -> None:
    admitted = mapped(adt("DG1|1||J18.900^肺炎^ICD10|||A", "DG1|2||I10.x00^高血压^ICD10|||W"))
    discharged = mapped(
        adt("DG1|1||I10.x00^高血压^ICD10|||F", "DG1|2||J18.900^肺炎^ICD10|||F", event="A03")
    )
    ids = {codes(c["code"])[CN_ICD10]: c["id"] for c in of_type(admitted, "Condition")}
    again = {codes(c["code"])[CN_ICD10]: c["id"] for c in of_type(discharged, "Condition")}
    assert ids == again
    assert one(admitted, "Encounter")["id"] == one(discharged, "Encounter")["id"]


def test_a_diagnosis_listed_as_admitting_and_final_is_one_condition_with_two_roles() -> None:
    resources = mapped(
        adt("DG1|1||J18.900^肺炎^ICD10|||A", "DG1|2||J18.900^肺炎^ICD10|||F", event="A03")
    )
    condition = one(resources, "Condition")
    assert codes(condition["verificationStatus"]).popitem()[1] == "confirmed"  # later wins
    diagnosis = one(resources, "Encounter")["diagnosis"]
    assert [codes(d["use"]).get(ROLE) for d in diagnosis] == ["AD", "DD"]
    assert {d["condition"]["reference"] for d in diagnosis} == {f"Condition/{condition['id']}"}


def test_a_diagnosis_deleted_later_in_the_same_message_keeps_no_clinical_status() -> None:
    resources = mapped(
        adt("DG1|1||J18.900^肺炎^ICD10|||A", segment("DG1", {1: "2", 3: "J18.900", 21: "D"}))
    )
    condition = one(resources, "Condition")
    assert "clinicalStatus" not in condition  # con-5
    assert codes(condition["verificationStatus"]).popitem()[1] == "entered-in-error"
    assert [codes(d["use"])[ROLE] for d in one(resources, "Encounter")["diagnosis"]] == ["AD"]


def test_diagnosis_rank_clinician_delete_and_the_default_icd10_system() -> None:
    resources = mapped(
        adt(
            segment(
                "DG1",
                {
                    1: "1",
                    2: "I10",
                    3: "K80.200^胆囊结石",
                    4: "胆囊结石伴胆囊炎",
                    5: "202603050930",
                    6: "A",
                    15: "1",
                    16: "1210^邵^立新",
                },
            ),
            segment("DG1", {1: "2", 3: "I10.x00^高血压^ICD10", 6: "W", 21: "D"}),
            "DG1|3",  # nothing to record
            sender="OTHER",
        )
    )
    stone, deleted = of_type(resources, "Condition")
    # DG1-2 names the system when DG1-3.3 is empty; a sender without an override gets WHO ICD-10.
    assert codes(stone["code"]) == {"http://hl7.org/fhir/sid/icd-10": "K80.200"}
    assert stone["code"]["text"] == "胆囊结石伴胆囊炎"
    assert stone["asserter"] == {"display": "邵立新"}
    assert stone["recordedDate"] == "2026-03-05T09:30:00+08:00"
    assert "clinicalStatus" not in deleted  # con-5
    assert codes(deleted["verificationStatus"]).popitem()[1] == "entered-in-error"
    diagnosis = one(resources, "Encounter")["diagnosis"]
    assert diagnosis == [
        {
            "condition": {"reference": f"Condition/{stone['id']}"},
            "use": {"coding": [{"system": ROLE, "code": "AD"}, {"system": V2_0052, "code": "A"}]},
            "rank": 1,
        }
    ]


def test_without_pv1_a_diagnosis_belongs_to_the_patient_only() -> None:
    resources = mapped(adt("DG1|1||J18.900^肺炎^ICD10|||A", pv1=None))
    condition = one(resources, "Condition")
    assert "encounter" not in condition
    assert condition["subject"]["reference"] == f"Patient/{one(resources, 'Patient')['id']}"
    assert not of_type(resources, "Encounter")


# --- AL1 -> AllergyIntolerance ---


def test_drug_allergy_at_admission() -> None:
    resources = corpus("01-his-adt-a01-admit-resp.hl7")
    allergy = one(resources, "AllergyIntolerance")
    assert allergy["code"]["coding"] == [
        {"system": "urn:jianhu:codesystem:his-drug", "code": "Y00123", "display": "青霉素"}
    ]
    assert allergy["category"] == ["medication"]
    assert allergy["type"] == "allergy"
    assert allergy["criticality"] == "high"
    assert allergy["reaction"] == [
        {"manifestation": [{"text": "皮疹、胸闷"}], "severity": "severe"}
    ]
    assert allergy["onsetDateTime"] == "2015-06-10"
    assert allergy["patient"]["reference"] == f"Patient/{one(resources, 'Patient')['id']}"
    assert codes(allergy["clinicalStatus"]).popitem()[1] == "active"
    assert codes(allergy["verificationStatus"]).popitem()[1] == "confirmed"


def test_allergy_update_from_the_emr_meets_the_same_allergy_from_the_his() -> None:
    resources = corpus("13-emr-adt-a08-allergy-update.hl7")
    allergy = one(resources, "AllergyIntolerance")
    assert codes(allergy["code"]) == {"urn:jianhu:codesystem:his-drug": "Y00310"}
    assert allergy["reaction"][0] == {"manifestation": [{"text": "荨麻疹"}], "severity": "moderate"}
    assert allergy["criticality"] == "low"
    assert allergy["onsetDateTime"] == "2026-03-14"
    pid = "PID|1||10088123^^^JHYY^PI||徐^静||19950514|F"
    his = Message(
        "\r".join(
            [
                "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260315080000||ADT^A08|X1|P|2.4",
                pid,
                "AL1|3|DA|Y00310^头孢呋辛^HISDRUG|MO|荨麻疹",
            ]
        )
    )
    assert one(mapped(his), "AllergyIntolerance")["id"] == allergy["id"]


def test_allergy_categories_and_segments_without_an_allergen() -> None:
    resources = mapped(adt("AL1|1|FA|^海鲜|MI", "AL1|2|EA^环境^HL70127", "AL1|3|MC|X1^造影剂"))
    food, contraindication = of_type(resources, "AllergyIntolerance")
    assert food["category"] == ["food"]
    assert food["code"] == {"text": "海鲜"}
    assert "reaction" not in food  # a severity without a reaction text has no reaction
    assert food["criticality"] == "low"
    assert "category" not in contraindication
    assert "type" not in contraindication


# --- IN1 -> Coverage + Organization ---


def test_insurance_with_the_medical_insurance_bureau_as_payer() -> None:
    resources = corpus("01-his-adt-a01-admit-resp.hl7")
    patient = f"Patient/{one(resources, 'Patient')['id']}"
    payer = one(resources, "Organization")
    coverage = one(resources, "Coverage")
    assert payer["name"] == "绍兴市医疗保障局"
    assert payer["identifier"] == [{"system": "urn:jianhu:sid:insurer:his", "value": "330600"}]
    assert coverage["payor"] == [{"reference": f"Organization/{payer['id']}"}]
    assert codes(coverage["type"]) == {
        "urn:jianhu:codesystem:cv02-01-204-medical-insurance-type": "01",
        "http://terminology.hl7.org/CodeSystem/v3-ActCode": "PUBLICPOL",
    }
    assert coverage["type"]["text"] == "城镇职工基本医疗保险"
    assert coverage["subscriberId"] == "A33060200123456"
    assert coverage["identifier"] == [{"system": INSURANCE_CARD, "value": "A33060200123456"}]
    assert codes(coverage["relationship"]).popitem()[1] == "self"
    assert coverage["subscriber"] == coverage["beneficiary"] == {"reference": patient}
    assert coverage["status"] == "active"


def test_two_plans_of_one_payer_self_pay_and_a_payer_known_by_name_only() -> None:
    resources = mapped(
        adt(
            segment(
                "IN1",
                {
                    1: "1",
                    2: "01^城镇职工基本医疗保险",
                    3: "330600",
                    4: "绍兴市医疗保障局",
                    12: "20260101",
                    13: "20261231",
                },
            ),
            "IN1|2|06^大额补充医疗保险|330600|绍兴市医疗保障局",
            "IN1|3|ZF^自费",
            segment("IN1", {1: "4", 2: "07^商业医疗保险", 4: "平安健康保险", 17: "CHD"}),
            "IN1|5",  # neither plan nor payer
        )
    )
    payer = one(resources, "Organization")
    employee, supplement, own, commercial = of_type(resources, "Coverage")
    assert (
        employee["payor"] == supplement["payor"] == [{"reference": f"Organization/{payer['id']}"}]
    )
    assert employee["id"] != supplement["id"]
    assert employee["period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    patient = f"Patient/{one(resources, 'Patient')['id']}"
    assert own["payor"] == [{"reference": patient}]
    assert codes(own["type"])["http://terminology.hl7.org/CodeSystem/coverage-selfpay"] == "pay"
    assert commercial["payor"] == [{"display": "平安健康保险"}]
    assert codes(commercial["relationship"]).popitem()[1] == "child"
    assert "subscriber" not in commercial


# --- NK1 -> RelatedPerson ---


def test_spouse_as_emergency_contact() -> None:
    resources = corpus("01-his-adt-a01-admit-resp.hl7")
    person = one(resources, "RelatedPerson")
    assert person["name"][0]["text"] == "张丽"
    relationship, role = person["relationship"]
    assert codes(relationship) == {
        "http://terminology.hl7.org/CodeSystem/v2-0063": "SPO",
        "http://terminology.hl7.org/CodeSystem/v3-RoleCode": "SPS",
    }
    assert codes(role) == {"http://terminology.hl7.org/CodeSystem/v2-0131": "C"}
    assert role["text"] == "紧急联系人"
    # XTN-3 CP: a cellular phone, whatever the field it came in
    assert person["telecom"] == [{"system": "phone", "value": "13857567890", "use": "mobile"}]
    assert person["address"][0]["city"] == "绍兴市"
    assert person["patient"]["reference"] == f"Patient/{one(resources, 'Patient')['id']}"


def test_son_and_a_reordered_contact_list_keeps_each_person() -> None:
    son = one(corpus("12-his-adt-a01-enhanced-ack.hl7"), "RelatedPerson")
    assert codes(son["relationship"][0])["http://terminology.hl7.org/CodeSystem/v3-RoleCode"] == (
        "CHILD"
    )
    first = mapped(adt("NK1|1|张^丽|SPO", "NK1|2|张^强|CHD"))
    second = mapped(adt("NK1|1|张^强|CHD", "NK1|2|张^丽|SPO"))
    by_name = {p["name"][0]["text"]: p["id"] for p in of_type(first, "RelatedPerson")}
    assert by_name == {p["name"][0]["text"]: p["id"] for p in of_type(second, "RelatedPerson")}


# --- PV1 -> Encounter ---


def test_admission_encounter_has_ward_room_bed_doctors_department_and_admit_source() -> None:
    resources = corpus("01-his-adt-a01-admit-resp.hl7")
    encounter = one(resources, "Encounter")
    (ward,) = at(encounter, "wa")
    places = {place["id"]: place for place in of_type(resources, "Location")}
    assert ward["location"] == {
        "reference": ward["location"]["reference"],
        "display": "呼吸内科病区",
        "identifier": {"system": "urn:jianhu:sid:ward:his", "value": "B0301"},
    }
    assert [e["location"]["display"] for e in at(encounter, "ro") + at(encounter, "bd")] == [
        "0312",
        "03",
    ]
    assert {e["status"] for e in encounter["location"]} == {"active"}
    # ward, room and bed are Locations, the bed part of the room part of the ward
    (bed,) = at(encounter, "bd")
    chain, place = [], places[bed["location"]["reference"].split("/")[1]]
    while True:
        chain.append((place["name"], codes(place["physicalType"])[PHYSICAL]))
        if "partOf" not in place:
            break
        place = places[place["partOf"]["reference"].split("/")[1]]
    assert chain == [("03", "bd"), ("0312", "ro"), ("呼吸内科病区", "wa")]
    assert place["identifier"] == [{"system": "urn:jianhu:sid:ward:his", "value": "B0301"}]
    assert [
        (codes(p["type"][0]).popitem()[1], p["individual"]["display"])
        for p in encounter["participant"]
    ] == [("ATND", "王建国"), ("ADM", "钱文军")]
    # the doctors the HIS numbers are Practitioners, kept once however many messages name them
    doctors = {d["id"]: d for d in of_type(resources, "Practitioner")}
    attending = encounter["participant"][0]["individual"]
    assert doctors[attending["reference"].split("/")[1]]["name"][0]["text"] == "王建国"
    assert doctors[attending["reference"].split("/")[1]]["identifier"] == [attending["identifier"]]
    assert codes(encounter["serviceType"]) == {"urn:jianhu:codesystem:local:his-dept": "0301"}
    assert encounter["serviceType"]["text"] == "呼吸内科"
    assert codes(encounter["hospitalization"]["admitSource"]) == {
        "urn:jianhu:codesystem:front-page-rytj-admission-route": "2"
    }
    assert codes(encounter["type"][0]) == {"http://terminology.hl7.org/CodeSystem/v2-0007": "R"}


def test_transfer_closes_the_old_place_and_opens_the_new_one() -> None:
    resources = corpus("02-his-adt-a02-transfer-icu.hl7")
    encounter = one(resources, "Encounter")
    admitted = one(corpus("01-his-adt-a01-admit-resp.hl7"), "Encounter")
    assert encounter["id"] == admitted["id"]  # "ZY2026004512" and "ZY2026004512^^^JHYY^VN"
    moved = "2026-03-04T02:18:44+08:00"
    wards = at(encounter, "wa")
    assert [(w["location"]["display"], w["status"], w["period"]) for w in wards] == [
        ("重症医学科病区", "active", {"start": moved}),
        ("呼吸内科病区", "completed", {"end": moved}),
    ]
    assert [b["location"]["display"] for b in at(encounter, "bd")] == ["05", "03"]


def test_discharge_keeps_the_discharge_method_code_for_the_front_page() -> None:
    encounter = one(corpus("03-his-adt-a03-discharge.hl7"), "Encounter")
    disposition = encounter["hospitalization"]["dischargeDisposition"]
    assert disposition["coding"] == [
        {
            "system": "urn:jianhu:codesystem:cv06-00-226-discharge-method",
            "code": "1",
            "display": "医嘱离院",
        }
    ]
    assert encounter["status"] == "finished"
    assert {e["status"] for e in encounter["location"]} == {"completed"}


def test_preadmission_and_emergency_to_inpatient() -> None:
    planned = one(corpus("05-his-adt-a05-preadmit.hl7"), "Encounter")
    assert planned["hospitalization"]["preAdmissionIdentifier"]["value"] == "YRY20260306012"
    assert {e["status"] for e in planned["location"]} == {"planned"}
    changed = one(corpus("06-his-adt-a06-op-to-ip.hl7"), "Encounter")
    assert codes(changed["hospitalization"]["admitSource"]) == {
        "urn:jianhu:codesystem:front-page-rytj-admission-route": "1"
    }
    emergency = [w for w in at(changed, "wa") if w["status"] == "completed"]
    assert [(w["location"]["display"], "period" in w) for w in emergency] == [("急诊科", False)]


def test_a_place_named_only_in_pl1_has_no_ward_identifier() -> None:
    resources = corpus("09-his-adt-a13-cancel-discharge.hl7")
    encounter = one(resources, "Encounter")
    (ward,) = at(encounter, "wa")
    assert ward["location"] == {
        "reference": ward["location"]["reference"],
        "display": "心血管内科病区",
    }
    (place,) = [p for p in of_type(resources, "Location") if p["name"] == "心血管内科病区"]
    assert "identifier" not in place


# --- bad input ---


def test_adt_without_pid_is_refused() -> None:
    message = Message(
        "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260305100000||ADT^A01|X2|P|2.4\r"
        "PV1|1|I|B0301||||||||||||||||ZY1\rDG1|1||J18.900^肺炎^ICD10|||A"
    )
    with pytest.raises(ValueError, match="PID"):
        normalize(message)


def test_a_discharge_to_another_hospital_names_it_and_the_full_street_line_is_kept() -> None:
    message = Message(
        "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260320100000||ADT^A03^ADT_A03|D1|P|2.5\r"
        "EVN|A03|20260320100000\r"
        "PID|1||10099999^^^JHYY^PI||赵^六||19500101|M|||"
        "解放北路188号^3幢2单元501室^绍兴市^浙江省^312000^CHN^H\r"
        "PV1|1|I|NK^12^3^JHYY||||||||||||||||ZY2026009999^^^JHYY^VN|||||||||||||||||2^医嘱转院"
        "|330600001^绍兴市人民医院|||||||20260310080000|20260320100000\r"
    )
    resources = normalize(message).resources
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    assert patient["address"][0]["line"] == ["解放北路188号", "3幢2单元501室"]
    visit = next(r for r in resources if r["resourceType"] == "Encounter")
    assert visit["hospitalization"]["destination"] == {
        "display": "绍兴市人民医院",
        "identifier": {"system": "urn:jianhu:sid:institution:his", "value": "330600001"},
    }
    assert visit["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "2"


def test_marital_status_ethnic_group_and_nationality() -> None:
    """PID-16, PID-22 and PID-26 as the HIS sends them: what the front page's 婚姻, 民族 and
    国籍 are read from."""
    patient = one(corpus("01-his-adt-a01-admit-resp.hl7"), "Patient")
    marital = patient["maritalStatus"]
    assert marital["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0002"
    v3 = [c for c in marital["coding"] if c["system"].endswith("v3-MaritalStatus")]
    assert [c["code"] for c in v3] == ["M"]
    extensions = {e["url"]: e for e in patient["extension"]}
    ethnic = extensions["urn:jianhu:structuredefinition:ethnic-group"]["valueCodeableConcept"]
    assert ethnic["coding"][0] == {
        "system": "urn:jianhu:codesystem:gb-3304-ethnicity",
        "code": "01",
        "display": "汉族",
    }
    nationality = extensions["http://hl7.org/fhir/StructureDefinition/patient-nationality"]
    (code,) = nationality["extension"]
    assert code["valueCodeableConcept"]["coding"][0]["system"] == "urn:iso:std:iso:3166"
    assert code["valueCodeableConcept"]["coding"][0]["code"] == "CHN"


def test_a_gb_marital_code_without_its_system_is_read_as_gb_t_2261_2() -> None:
    text = (
        "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260302093512||ADT^A01^ADT_A01|M1|P|2.4\r"
        "PID|1||10023456^^^JHYY^PI||张^三||19680412|M||||||||20^已婚\r"
        "PV1|1|I|W1\r"
    )
    patient = one(normalize(Message(text)).resources, "Patient")
    assert patient["maritalStatus"]["coding"] == [
        {
            "system": "urn:jianhu:codesystem:gb-t-2261-2-marital-status",
            "code": "20",
            "display": "已婚",
        },
        {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"},
    ]


@pytest.mark.parametrize(
    ("pid_16", "system", "v3"),
    [
        ("已婚", "urn:jianhu:codesystem:gb-t-2261-2-marital-status", None),  # text, not table 0002
        ("90^未说明的婚姻状况", "urn:jianhu:codesystem:gb-t-2261-2-marital-status", "NullFlavor"),
    ],
)
def test_marital_codes_that_are_not_table_0002_letters(
    pid_16: str, system: str, v3: str | None
) -> None:
    text = (
        "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260302093512||ADT^A01^ADT_A01|M1|P|2.4\r"
        f"PID|1||10023456^^^JHYY^PI||张^三||19680412|M||||||||{pid_16}\r"
        "PV1|1|I|W1\r"
    )
    coding = one(normalize(Message(text)).resources, "Patient")["maritalStatus"]["coding"]
    assert coding[0]["system"] == system
    assert [c["system"].rpartition("-")[2] for c in coding[1:]] == ([v3] if v3 else [])
