"""ORM^O01 / OML^O21 to ServiceRequest and Specimen, and the meeting of an order from the HIS or
EMR with the result of the LIS or PACS: same ServiceRequest, same Specimen."""

import pytest

from hub.base.json import Json
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from tests.unit.test_hl7v2_mapping import CORPUS, MANIFEST, message_of


def resources(file: str, kind: str) -> list[Json]:
    return [r for r in normalize(message_of(file)).resources if r["resourceType"] == kind]


def hand_written(*segments: str) -> Message:
    return Message("\r".join(segments))


MSH = "MSH|^~\\&|HIS|JHYY|LIS|JHYY|20260306101522||ORM^O01^ORM_O01|T0001|P|2.4"
PID = "PID|1||10045002^^^JHYY^PI||李^娜||19900721|F"


def only_request(message: Message) -> Json:
    (request,) = [r for r in normalize(message).resources if r["resourceType"] == "ServiceRequest"]
    return request


# --- what an order message says ---


def test_lab_order_gives_one_service_request_per_orc_obr_group() -> None:
    cbc, crp = resources("14-his-orm-o01-lab-order.hl7", "ServiceRequest")
    assert cbc["identifier"][0]["system"] == "urn:jianhu:sid:placer-order:his"
    assert cbc["identifier"][0]["value"] == "2603050388001"
    assert cbc["identifier"][0]["type"]["coding"][0]["code"] == "PLAC"
    assert crp["identifier"][0]["value"] == "2603050388002"
    assert cbc["requisition"]["value"] == crp["requisition"]["value"] == "G2603050388"
    assert (cbc["status"], cbc["intent"]) == ("active", "order")
    assert cbc["priority"] == "stat"  # ORC-7 / OBR-27 priority component S
    assert "priority" not in crp
    assert cbc["authoredOn"] == "2026-03-05T08:30:15+08:00"
    assert cbc["requester"]["display"] == "俞海峰"
    assert cbc["requester"]["identifier"] == {"system": "urn:jianhu:sid:staff", "value": "1301"}
    assert cbc["code"]["coding"][1]["code"] == "CBC"
    assert cbc["reasonCode"][0]["coding"][0]["code"] == "R50.900"
    assert cbc["note"] == [{"text": "临床诊断：发热待查|上呼吸道感染？请加急"}]  # \F\ decoded
    assert cbc["encounter"]["reference"].startswith("Encounter/")


def test_order_without_spm_takes_its_specimen_from_obr_15() -> None:
    cbc, _ = resources("14-his-orm-o01-lab-order.hl7", "ServiceRequest")
    specimens = resources("14-his-orm-o01-lab-order.hl7", "Specimen")
    assert len(specimens) == 2  # one per order: CBC and CRP go in different tubes
    first = next(s for s in specimens if cbc["specimen"] == [{"reference": f"Specimen/{s['id']}"}])
    assert first["type"]["coding"][0]["code"] == "BLD"
    assert first["type"]["text"] == "静脉血"
    assert first["request"] == [{"reference": f"ServiceRequest/{cbc['id']}"}]


def test_imaging_order_keeps_category_time_and_clinical_information() -> None:
    (ct,) = resources("15-emr-orm-o01-ct-order.hl7", "ServiceRequest")
    assert ct["identifier"][0]["system"] == "urn:jianhu:sid:placer-order:emr"
    assert ct["priority"] == "routine"
    assert ct["category"][0]["coding"][0]["code"] == "CT"
    assert ct["occurrenceDateTime"] == "2026-03-05T10:00:00+08:00"
    assert ct["note"][0]["text"].startswith("发热2天")
    assert "specimen" not in ct
    assert resources("15-emr-orm-o01-ct-order.hl7", "Specimen") == []


def test_oml_specimen_keeps_its_lifecycle_times_type_and_barcodes() -> None:
    (flu,) = resources("17-his-oml-o21-flu-order.hl7", "ServiceRequest")
    (swab,) = resources("17-his-oml-o21-flu-order.hl7", "Specimen")
    assert flu["priority"] == "stat"  # TQ1-9 S^加急
    assert flu["reasonCode"][0]["coding"][0]["code"] == "J11.100"
    assert flu["specimen"] == [{"reference": f"Specimen/{swab['id']}"}]
    assert [(i["system"], i["value"]) for i in swab["identifier"]] == [
        ("urn:jianhu:sid:specimen:his", "2603050301"),
        ("urn:jianhu:sid:specimen:lis", "S2603050301"),
    ]
    assert swab["type"]["coding"][0]["code"] == "NPS"
    assert swab["collection"]["collectedDateTime"] == "2026-03-05T08:15:00+08:00"
    assert swab["receivedTime"] == "2026-03-05T08:29:00+08:00"
    assert swab["collection"]["bodySite"]["text"] == "鼻咽部"
    assert swab["collection"]["quantity"] == {"value": 1, "unit": "支"}
    assert swab["container"][0]["identifier"][0]["value"] == "2603050301"


def test_one_tube_for_two_orders_is_one_specimen_requested_by_both() -> None:
    liver, kidney = resources("18-emr-oml-o21-chem-order.hl7", "ServiceRequest")
    (serum,) = resources("18-emr-oml-o21-chem-order.hl7", "Specimen")
    tube = {"reference": f"Specimen/{serum['id']}"}
    assert liver["specimen"] == kidney["specimen"] == [tube]
    assert serum["request"] == [
        {"reference": f"ServiceRequest/{liver['id']}"},
        {"reference": f"ServiceRequest/{kidney['id']}"},
    ]
    assert serum["container"][0]["type"]["text"] == "黄头管"
    assert serum["container"][0]["additiveCodeableConcept"] == {"text": "促凝剂"}
    assert serum["collection"]["collectedDateTime"] == "2026-03-10T06:30:00+08:00"


# --- cancel and status ---


def test_cancel_revokes_the_same_service_request_the_new_order_made() -> None:
    file = "16-his-orm-o01-cancel-v231.hl7"
    revoked = only_request(message_of(file))
    new_order = "ORC|NW|2603060142003^HIS|||SC||||20260306090000|||1602^钱^芳"
    segments = corpus_text(file).strip("\r\n").split("\r")
    placed = only_request(
        Message("\r".join(new_order if s.startswith("ORC|") else s for s in segments))
    )
    assert revoked["id"] == placed["id"]
    assert (placed["status"], revoked["status"]) == ("active", "revoked")
    assert placed["authoredOn"] == "2026-03-06T09:00:00+08:00"
    assert "authoredOn" not in revoked  # ORC-9 of a cancel is the time of the cancel


def corpus_text(file: str) -> str:
    entry = next(e for e in MANIFEST if e["file"] == file)
    return (CORPUS / file).read_bytes().decode(entry["charset"])


@pytest.mark.parametrize(
    ("control", "state", "expected"),
    [
        ("HD", "IP", "on-hold"),  # the hold this message asks for wins over ORC-5
        ("DC", "IP", "revoked"),
        ("NW", "CM", "completed"),  # ORC-5 refines an order that is only passed on
        ("SC", "CM", "completed"),
        ("NW", "", "active"),
        ("ZZ", "", "unknown"),
    ],
)
def test_status_from_order_control_and_order_status(
    control: str, state: str, expected: str
) -> None:
    message = hand_written(
        MSH, PID, f"ORC|{control}|A1^HIS|||{state}", "OBR|1|A1^HIS||TSH^促甲状腺激素^L"
    )
    assert only_request(message)["status"] == expected


def test_placer_numbers_are_keyed_by_the_placer_not_the_sender() -> None:
    his = only_request(hand_written(MSH, PID, "ORC|NW|2603050388001^HIS", "OBR|1"))
    emr = only_request(hand_written(MSH, PID, "ORC|NW|2603050388001^EMR", "OBR|1"))
    bare = only_request(hand_written(MSH, PID, "ORC|NW|2603050388001", "OBR|1"))
    assert his["id"] != emr["id"]  # the HIS and the EMR issue numbers of the same shape
    assert bare["id"] == his["id"]  # without EI.2 the sender (MSH-3 HIS) placed the order


def test_two_obr_under_one_orc_are_two_orders_with_the_orc_control() -> None:
    message = hand_written(
        MSH, PID, "ORC|NW|A1^HIS", "OBR|1|A1^HIS||CBC^血常规^L", "OBR|2|A2^HIS||CRP^C反应蛋白^L"
    )
    found = [r for r in normalize(message).resources if r["resourceType"] == "ServiceRequest"]
    assert [r["identifier"][0]["value"] for r in found] == ["A1", "A2"]
    assert [r["status"] for r in found] == ["active", "active"]


# --- the order meets its result ---


@pytest.mark.parametrize(
    ("order", "result"),
    [
        ("14-his-orm-o01-lab-order.hl7", "19-lis-oru-r01-cbc-corrected.hl7"),
        ("15-emr-orm-o01-ct-order.hl7", "35-pacs-oru-r01-ct-chest.hl7"),
        ("17-his-oml-o21-flu-order.hl7", "25-lis-oru-r01-flu-spm.hl7"),
        ("18-emr-oml-o21-chem-order.hl7", "30-lis-oru-r01-liver-kidney.hl7"),
    ],
)
def test_the_result_report_is_based_on_the_ordered_service_request(order: str, result: str) -> None:
    ordered = {f"ServiceRequest/{r['id']}" for r in resources(order, "ServiceRequest")}
    reports = resources(result, "DiagnosticReport")
    based_on = {b["reference"] for report in reports for b in report["basedOn"]}
    assert based_on
    assert based_on <= ordered


def test_the_lis_result_updates_the_specimen_the_order_created() -> None:
    (ordered,) = resources("17-his-oml-o21-flu-order.hl7", "Specimen")
    (resulted,) = resources("25-lis-oru-r01-flu-spm.hl7", "Specimen")
    (report,) = resources("25-lis-oru-r01-flu-spm.hl7", "DiagnosticReport")
    assert resulted["id"] == ordered["id"]
    assert resulted["request"] == ordered["request"]  # the written-over version keeps the link
    assert resulted["identifier"] == ordered["identifier"]
    assert resulted["receivedTime"] == ordered["receivedTime"]
    assert resulted["status"] == "available"  # SPM-20 Y, known only to the lab
    assert report["specimen"] == [{"reference": f"Specimen/{ordered['id']}"}]


def test_a_result_without_the_placer_namespace_links_to_no_order() -> None:
    (report,) = resources("22-mindray-oru-r01-bs800-chem.hl7", "DiagnosticReport")
    assert "basedOn" not in report  # OBR-2 2603060215 from an analyser: who placed it?


# --- input the mapping cannot use ---


def test_order_without_pid_is_refused() -> None:
    with pytest.raises(ValueError, match="PID"):
        normalize(hand_written(MSH, "ORC|NW|A1^HIS", "OBR|1|A1^HIS"))


def test_order_without_orc_or_obr_is_refused() -> None:
    with pytest.raises(ValueError, match="no ORC or OBR"):
        normalize(hand_written(MSH, PID, "PV1|1|O"))


def test_order_without_any_order_number_is_refused() -> None:
    with pytest.raises(ValueError, match="placer"):
        normalize(hand_written(MSH, PID, "ORC|NW", "OBR|1|||TSH^促甲状腺激素^L"))
