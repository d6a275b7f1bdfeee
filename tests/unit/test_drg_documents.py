"""FHIR to the DRG documents: one pneumonia stay built from the HL7 corpus through the hub's own
mappings (the A01 admission of 张伟, his discharge as the HIS would send it, a day's charges and
a refund), plus a bronchoscopy the feeds do not carry. Every mapped field is asserted, every
value-domain check is shown on a broken stay, and the documents pass the platform simulator's
own field rules."""

import copy
import json
from pathlib import Path

import pytest

from adapters.drg import simulator_rules
from adapters.drg.checks import FieldProblem
from adapters.drg.documents import fee_details, front_page, prepare, settlement_list
from adapters.drg.fields import TABLE, load, table
from adapters.drg.sources import LINE_READERS, STAY_READERS
from adapters.drg.stay import ADMISSION_CONDITION, ADMISSION_COUNT, INSURANCE_SERIAL, Stay
from fhir_profiles.identifiers import INPATIENT_NUMBER, MEDICAL_RECORD_NUMBER
from hub.base.json import Json
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[Json] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
ADMISSION = "01-his-adt-a01-admit-resp.hl7"
DISCHARGE = "03-his-adt-a03-discharge.hl7"
CHARGES = "45-his-dft-p03-inpatient-charges.hl7"
VISIT = "ZY2026004512"


def text_of(file: str) -> str:
    charset = next(entry["charset"] for entry in MANIFEST if entry["file"] == file)
    return (CORPUS / file).read_bytes().decode(charset)


def set_field(segment: str, number: int, value: str) -> str:
    fields = segment.split("|")
    fields += [""] * (number + 1 - len(fields))
    fields[number] = value
    return "|".join(fields)


def edit(text: str, name: str, changes: dict[int, str]) -> str:
    """The message with fields of its first ``name`` segment replaced (MSH counts MSH-1 as |)."""
    segments = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r").split("\r")
    for index, segment in enumerate(segments):
        if segment.startswith(name + "|"):
            for number, value in changes.items():
                segment = set_field(segment, number - 1 if name == "MSH" else number, value)
            segments[index] = segment
            break
    return "\r".join(segments)


def discharge_message() -> str:
    """The corpus A03 (03) is another patient's visit; this is 张伟's own discharge, shaped as
    that A03: the A01's PID and PV1 with 离院方式 (PV1-36) and the discharge time (PV1-45),
    and final diagnoses (DG1-6 F) ranked by DG1-15, the main one listed second."""
    a01 = text_of(ADMISSION)
    a03 = text_of(DISCHARGE)
    message = edit(a01, "MSH", {9: "ADT^A03^ADT_A03", 10: "HIS202603111015020099"})
    message = edit(message, "EVN", {1: "A03", 2: "20260311101502"})
    message = edit(message, "PV1", {36: "1^医嘱离院^CV06.00.226", 45: "20260311100000"})
    assert "1^医嘱离院^CV06.00.226" in a03  # the same coding as the corpus discharge
    kept = [s for s in message.split("\r") if not s.startswith("DG1|")]
    final = [
        "DG1|1|ICD10|I10.x00^高血压^ICD10|高血压||F" + "|" * 9 + "2",
        "DG1|2|ICD10|J18.900^肺炎^ICD10|肺炎||F" + "|" * 9 + "1",
    ]
    return "\r".join([*kept, *final])


def refund_message() -> str:
    """The next day's DFT: one of the two cefuroxime doses returned (FT1-6 CR, negative)."""
    text = text_of(CHARGES).replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    segments = [s for s in text.split("\r") if not s.startswith("FT1|")]
    refund = (
        "FT1|1|CF26030400001||20260304|20260304100000|CR|X-J01DC02^头孢呋辛钠注射液 1.5g^HISFEE"
        "|||-1|-18.62&CNY|18.62&CNY|0301^呼吸内科"
    )
    segments.insert(segments.index(next(s for s in segments if s.startswith("ZPI"))), refund)
    segments[0] = set_field(segments[0], 9, "HIS202603042359010091")
    return "\r".join(segments)


def resources(*messages: str) -> list[Json]:
    """What the store holds after the messages, in order: a later version of a resource
    replaces the earlier one (ADT owns Patient and Encounter; if-absent writes of the DFT
    do not overwrite them)."""
    held: dict[str, Json] = {}
    for text in messages:
        mapped = normalize(Message(text))
        for resource in mapped.resources:
            key = f"{resource['resourceType']}/{resource['id']}"
            if key in held and mapped.mode(resource).value == "if-absent":
                continue
            held[key] = resource
    return list(held.values())


BRONCHOSCOPY: Json = {
    "resourceType": "Procedure",
    "id": "prc-bronchoscopy",
    "status": "completed",
    "code": {
        "coding": [
            {
                "system": "urn:jianhu:codesystem:icd-9-cm-3-cn",
                "code": "33.2400",
                "display": "支气管镜下支气管活组织检查",
            }
        ]
    },
    "performedDateTime": "2026-03-04T02:15:00Z",  # 10:15 in Shaoxing
}


@pytest.fixture(scope="module")
def corpus_resources() -> list[Json]:
    charges = text_of(CHARGES)
    return resources(text_of(ADMISSION), charges, discharge_message(), refund_message())


@pytest.fixture
def stay(corpus_resources: list[Json]) -> Stay:
    found = copy.deepcopy(corpus_resources)

    def of(kind: str) -> list[Json]:
        return [r for r in found if r["resourceType"] == kind]

    (patient,) = of("Patient")
    (encounter,) = of("Encounter")
    (coverage,) = of("Coverage")
    return Stay(
        patient=patient,
        encounter=encounter,
        conditions=of("Condition"),
        procedures=[copy.deepcopy(BRONCHOSCOPY)],
        charge_items=of("ChargeItem"),
        coverage=coverage,
    )


def main(stay: Stay) -> Json:
    page: Json = front_page(stay)["MAIN_DATA"]
    return page


def fields_of(problems: list[FieldProblem]) -> list[str]:
    return [problem.field for problem in problems]


# --- the stay built from the corpus ---


def test_the_corpus_stay_is_one_visit(stay: Stay) -> None:
    assert stay.encounter["status"] == "finished"
    assert {c["context"]["reference"] for c in stay.charge_items} == {
        f"Encounter/{stay.encounter['id']}"
    }
    assert len(stay.charge_items) == 7


def test_identity_of_the_stay(stay: Stay) -> None:
    page = main(stay)
    assert page["BAH"] == "ZY2026004512"  # PID-3 MR: 病案号
    assert page["JZLSH"] == VISIT  # PV1-19
    assert page["YBLSH"] == VISIT  # no 医保流水号 in the feeds: the visit number
    assert page["ZYCS"] == 1  # the feeds carry no 住院次数
    assert "HOS_ID" not in page


def test_patient_fields(stay: Stay) -> None:
    page = main(stay)
    assert page["XM"] == "张伟"
    assert page["XB"] == "1"
    assert page["CSRQ"] == "1968-04-12"
    assert page["NL"] == 57  # 58 only from 2026-04-12
    assert page["SFZH"] == "330602196804120315"
    assert page["YBKH"] == "A33060200123456"


def test_admission_and_discharge(stay: Stay) -> None:
    page = main(stay)
    assert page["RYTJ"] == "2"  # PV1-14 2^门诊
    assert page["RYSJ"] == "2026-03-02 09:30:00"
    assert page["CYSJ"] == "2026-03-11 10:00:00"
    assert page["SJZYTS"] == 9
    assert (page["RYKBBM"], page["RYKB"]) == ("0301", "呼吸内科")
    assert (page["CYKBBM"], page["CYKB"]) == ("0301", "呼吸内科")
    assert page["LYFS"] == "1"
    assert "YZZY_YLJG" not in page
    assert "WSY_YLJG" not in page


def test_discharge_diagnoses_by_rank(stay: Stay) -> None:
    page = main(stay)
    assert (page["JBDM"], page["ZYZD"]) == ("J18.900", "肺炎")  # rank 1, listed second
    assert (page["JBDM1"], page["QTZD1"]) == ("I10.x00", "高血压")
    assert "JBDM2" not in page
    assert "RYBQ1" not in page  # not in the feeds


def test_operations_with_local_dates(stay: Stay) -> None:
    page = main(stay)
    assert page["SSJCZBM1"] == "33.2400"
    assert page["SSJCZMC1"] == "支气管镜下支气管活组织检查"
    assert page["SSJCZRQ1"] == "2026-03-04 10:15:00"
    assert "SSJCZBM2" not in page


def test_total_cost_counts_the_refund(stay: Stay) -> None:
    # 45 + 28 + 25 + 30 + 184 + 37.24 - 18.62
    assert main(stay)["ZFY"] == "330.62"
    assert settlement_list(stay) == {
        "MED_FEE_INFO": {"YBLSH": VISIT, "ZYCS": 1, "BAH": "ZY2026004512", "ZFY": "330.62"}
    }


def test_fee_details(stay: Stay) -> None:
    document = fee_details(stay)
    assert {k: v for k, v in document.items() if k != "DETAILS"} == {
        "YBLSH": VISIT,
        "JZLSH": VISIT,
        "ZYCS": 1,
        "BAH": "ZY2026004512",
    }
    rows = document["DETAILS"]
    assert [row["HOS_DETAIL_CODE"] for row in rows] == [
        "120100001",
        "120100002",
        "250101015",
        "250403017",
        "210300001",
        "X-J01DC02",
    ]
    assert rows[0] == {
        "CYSJ": "2026-03-11 10:00:00",
        "HOS_DETAIL_CODE": "120100001",
        "HOS_DETAIL_NAME": "床位费(三人间)",
        "D_PRICE": "45.00",
        "D_NUMBER": "1",
        "PRICE": "45.00",
        "PRICE_TIME": "2026-03-03",  # FT1-4 is a date: no time is made up
    }
    # two doses charged, one refunded: the refund is netted into its charge
    cefuroxime = rows[-1]
    assert (cefuroxime["D_PRICE"], cefuroxime["D_NUMBER"], cefuroxime["PRICE"]) == (
        "18.62",
        "1",
        "18.62",
    )
    total = sum(float(row["PRICE"]) for row in rows)
    assert f"{total:.2f}" == main(stay)["ZFY"]


def test_a_full_refund_leaves_no_row(stay: Stay) -> None:
    refund = next(c for c in stay.charge_items if c["priceOverride"]["value"] < 0)
    refund["quantity"]["value"], refund["priceOverride"]["value"] = -2, -37.24
    codes = [row["HOS_DETAIL_CODE"] for row in fee_details(stay)["DETAILS"]]
    assert "X-J01DC02" not in codes
    assert main(stay)["ZFY"] == "312.00"


def test_the_built_documents_are_sendable(stay: Stay) -> None:
    prepared = prepare(stay)
    assert prepared.problems == []
    assert prepared.sendable
    assert prepared.front_page == front_page(stay)
    assert prepared.settlement_list == settlement_list(stay)
    assert prepared.fee_details == fee_details(stay)


def test_the_platform_simulator_accepts_them(stay: Stay) -> None:
    prepared = prepare(stay)
    details = prepared.fee_details
    assert simulator_rules.check_front_page(prepared.front_page["MAIN_DATA"]) == []
    assert simulator_rules.check_settlement_list(prepared.settlement_list["MED_FEE_INFO"]) == []
    assert simulator_rules.check_fee_details(details, details["DETAILS"]) == []


# --- where values come from, when the corpus lacks them ---


def test_record_number_falls_back_to_the_inpatient_number(stay: Stay) -> None:
    stay.patient["identifier"] = [
        {"system": INPATIENT_NUMBER, "value": "0012345"},
        *[i for i in stay.patient["identifier"] if i["system"] != MEDICAL_RECORD_NUMBER],
    ]
    assert main(stay)["BAH"] == "0012345"


def test_admission_count_and_insurance_serial_number(stay: Stay) -> None:
    stay.encounter["extension"] = [{"url": ADMISSION_COUNT, "valueInteger": 3}]
    claim = {"resourceType": "Claim", "identifier": [{"system": INSURANCE_SERIAL, "value": "YB1"}]}
    page = main(Stay(**{**vars(stay), "claim": claim}))
    assert (page["ZYCS"], page["YBLSH"]) == (3, "YB1")


@pytest.mark.parametrize(("gender", "code"), [("female", "2"), ("other", "9"), (None, "9")])
def test_sex_codes(stay: Stay, gender: str | None, code: str) -> None:
    stay.patient.pop("gender")
    if gender:
        stay.patient["gender"] = gender
    assert main(stay)["XB"] == code


def test_a_same_day_stay_counts_one_day(stay: Stay) -> None:
    stay.encounter["period"]["end"] = "2026-03-02T18:00:00+08:00"
    assert main(stay)["SJZYTS"] == 1


def test_main_diagnosis_without_discharge_diagnoses(stay: Stay) -> None:
    for entry in stay.encounter["diagnosis"]:
        entry.pop("use")
    stay.encounter["diagnosis"][0]["rank"] = 3  # I10.x00
    assert (main(stay)["JBDM"], main(stay)["JBDM1"]) == ("J18.900", "I10.x00")
    stay.encounter.pop("diagnosis")  # no listing at all: the first Condition
    assert main(stay)["JBDM"] == stay.conditions[0]["code"]["coding"][0]["code"]


def test_admission_condition_of_other_diagnoses(stay: Stay) -> None:
    entry = next(e for e in stay.encounter["diagnosis"] if e.get("rank") == 2)
    entry["extension"] = [{"url": ADMISSION_CONDITION, "valueCode": "1"}]
    assert main(stay)["RYBQ1"] == "1"


def test_a_transfer_names_the_receiving_institution(stay: Stay) -> None:
    hospitalization = stay.encounter["hospitalization"]
    hospitalization["dischargeDisposition"]["coding"][0]["code"] = "2"
    hospitalization["destination"] = {"display": "浙江大学医学院附属第一医院"}
    page = main(stay)
    assert page["YZZY_YLJG"] == "浙江大学医学院附属第一医院"
    assert "WSY_YLJG" not in page
    assert prepare(stay).problems == []


# --- checks: each broken stay names its field ---


def problems(stay: Stay) -> list[str]:
    return fields_of(prepare(stay).problems)


@pytest.mark.parametrize("route", ["5", "0"])
def test_admission_route_domain(stay: Stay, route: str) -> None:
    stay.encounter["hospitalization"]["admitSource"]["coding"][0]["code"] = route
    assert problems(stay) == ["RYTJ"]


def test_discharge_way_domain(stay: Stay) -> None:
    stay.encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] = "6"
    assert problems(stay) == ["LYFS"]


@pytest.mark.parametrize(("way", "field"), [("2", "YZZY_YLJG"), ("3", "WSY_YLJG")])
def test_receiving_institution_required_on_transfer(stay: Stay, way: str, field: str) -> None:
    stay.encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] = way
    found = prepare(stay).problems
    assert fields_of(found) == [field]
    assert "拟接收医疗机构" in found[0].message


def test_admission_condition_domain(stay: Stay) -> None:
    entry = next(e for e in stay.encounter["diagnosis"] if e.get("rank") == 2)
    entry["extension"] = [{"url": ADMISSION_CONDITION, "valueCode": "5"}]
    assert problems(stay) == ["RYBQ1"]


@pytest.mark.parametrize("code", ["J18.900", "I10.x00", "J18.900x001", "J18", "J18.9"])
def test_icd10_shapes_accepted(stay: Stay, code: str) -> None:
    stay.conditions[0]["code"]["coding"][0]["code"] = code
    assert problems(stay) == []


@pytest.mark.parametrize("code", ["J189", "j18.900", "18.900", "J18.9000"])
def test_icd10_shapes_refused(stay: Stay, code: str) -> None:
    main_condition = next(c for c in stay.conditions if c["code"]["coding"][0]["code"] == "J18.900")
    main_condition["code"]["coding"][0]["code"] = code
    assert problems(stay) == ["JBDM"]


@pytest.mark.parametrize(
    ("code", "ok"), [("33.2400", True), ("00.6600x004", True), ("3324", False)]
)
def test_icd9cm3_shape(stay: Stay, code: str, ok: bool) -> None:
    stay.procedures[0]["code"]["coding"][0]["code"] = code
    assert problems(stay) == ([] if ok else ["SSJCZBM1"])


def test_admission_after_discharge(stay: Stay) -> None:
    stay.encounter["period"]["start"] = "2026-03-12T08:00:00+08:00"
    found = prepare(stay).problems
    assert fields_of(found) == ["CYSJ"]
    assert "早于入院时间" in found[0].message


def test_required_fields(stay: Stay) -> None:
    stay.patient["identifier"] = [
        i for i in stay.patient["identifier"] if i["system"] != MEDICAL_RECORD_NUMBER
    ]
    stay.patient.pop("birthDate")
    del stay.encounter["period"]["end"]  # still in hospital: no 出院时间
    found = problems(stay)
    for field in ("BAH", "CSRQ", "CYSJ", "SJZYTS", "DETAILS[0].CYSJ"):
        assert field in found
    assert "NL" not in found  # optional: left out without a birth date


def test_no_diagnosis(stay: Stay) -> None:
    stay.conditions.clear()
    assert problems(stay) == ["ZYZD", "JBDM"]


def test_a_refund_without_its_charge(stay: Stay) -> None:
    refund = next(c for c in stay.charge_items if c["priceOverride"]["value"] < 0)
    refund["code"]["coding"][0]["code"] = "X-OTHER"
    found = problems(stay)
    assert found == ["DETAILS[6].D_NUMBER", "DETAILS[6].PRICE"]


def test_no_fee_lines(stay: Stay) -> None:
    stay.charge_items.clear()
    assert problems(stay) == ["DETAILS"]


def test_more_diagnoses_than_the_front_page_holds(stay: Stay) -> None:
    extra = [
        {
            "resourceType": "Condition",
            "id": f"cnd-extra-{n}",
            "code": {"coding": [{"code": f"E{n:02d}.900", "display": f"诊断{n}"}]},
        }
        for n in range(16)
    ]
    stay.conditions.extend(extra)
    discharge = {"coding": [{"code": "DD"}]}
    stay.encounter["diagnosis"].extend(
        {"condition": {"reference": f"Condition/{c['id']}"}, "use": discharge} for c in extra
    )
    assert problems(stay) == ["JBDM15"]
    assert main(stay)["JBDM15"] == "E13.900"


# --- the table itself ---


def test_every_field_has_a_reader_and_a_distinct_code() -> None:
    fields = load()
    for spec in fields.front_page:
        assert spec.reader in STAY_READERS
    for spec in fields.fee_row:
        assert spec.reader in LINE_READERS
    codes = [spec.field for spec in fields.front_page]
    assert len(codes) == len(set(codes))
    assert {"JBDM1", "JBDM15", "SSJCZBM8", "SSJCZRQ8", "RYBQ15"} <= set(codes)
    assert [s.field for s in table().settlement_list] == ["YBLSH", "ZYCS", "BAH", "ZFY"]


def test_a_table_naming_an_unknown_reader_is_refused(tmp_path: Path) -> None:
    raw = json.loads(TABLE.read_text("utf-8"))
    raw["MAIN_DATA"].append({"field": "X", "name": "x", "from": "Encounter", "value": "nope"})
    path = tmp_path / "fields.json"
    path.write_text(json.dumps(raw), "utf-8")
    with pytest.raises(ValueError, match="nope"):
        load(path)
