"""ORU^R01 specimens: a lab result without SPM still has its tube (collection from OBR-7,
receipt from OBR-14, the lab's turnaround clock starts there), the same Specimen its order
made; an imaging report has none."""

import json
from pathlib import Path
from typing import Any

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))


def mapped(prefix: str) -> list[dict[str, Any]]:
    entry = next(e for e in MANIFEST if e["file"].startswith(prefix))
    text = (CORPUS / entry["file"]).read_bytes().decode(entry["charset"])
    return normalize(Message(text, entry["charset"])).resources


def of(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == kind]


def test_a_lab_result_without_spm_has_its_tube_from_obr() -> None:
    resources = mapped("19-")
    (specimen,) = of(resources, "Specimen")
    assert specimen["collection"]["collectedDateTime"] == "2026-03-05T08:45:00+08:00"
    assert specimen["receivedTime"] == "2026-03-05T09:02:10+08:00"
    (report,) = of(resources, "DiagnosticReport")
    assert report["specimen"] == [{"reference": f"Specimen/{specimen['id']}"}]
    assert all(
        o["specimen"] == {"reference": f"Specimen/{specimen['id']}"}
        for o in of(resources, "Observation")
    )
    assert specimen["request"] == [{"reference": report["basedOn"][0]["reference"]}]


def test_the_order_and_its_result_share_the_tube() -> None:
    order_tubes = {s["id"] for s in of(mapped("14-"), "Specimen")}
    result_tubes = {s["id"] for s in of(mapped("19-"), "Specimen")}
    assert order_tubes & result_tubes


def test_an_imaging_report_has_no_specimen() -> None:
    assert of(mapped("35-"), "Specimen") == []


def test_the_staff_messages_name_are_practitioners_kept_once() -> None:
    """OBX-16 (who observed) and ORC-12 / OBR-16 (who ordered): numbered staff are
    Practitioners, one per person however many segments name them."""
    result = "\r".join(
        [
            "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20261203090000||ORU^R01^ORU_R01|S1|P|2.5",
            "PID|1||P1^^^JHYY^PI||王^芳",
            "OBR|1|O1^HIS|F1^LIS|2345-7^血糖^LN|||20261203083000",
            "OBX|1|NM|2345-7^血糖^LN||5.6|mmol/L|3.9-6.1|N|||F|||20261203085000||2201^李^检验~^张^三",
            "OBX|2|NM|2339-0^葡萄糖^LN||5.5|mmol/L|3.9-6.1|N|||F|||20261203085000||2201^李^检验",
        ]
    )
    resources = normalize(Message(result)).resources
    (person,) = of(resources, "Practitioner")
    assert (person["name"][0]["text"], person["identifier"]) == (
        "李检验",
        [{"system": "urn:jianhu:sid:staff", "value": "2201"}],
    )
    first, second = of(resources, "Observation")
    assert [p.get("display") for p in first["performer"]] == ["李检验", "张三"]
    assert first["performer"][0]["reference"] == f"Practitioner/{person['id']}"
    assert "reference" not in first["performer"][1]  # a name without a number: no resource
    assert second["performer"][0]["reference"] == f"Practitioner/{person['id']}"

    order = "\r".join(
        [
            "MSH|^~\\&|HIS|JHYY|LIS|JHYY|20261203080000||ORM^O01^ORM_O01|S2|P|2.5",
            "PID|1||P1^^^JHYY^PI||王^芳",
            "PV1|1|O|MZ01||||1301^俞^海峰",
            "ORC|NW|O1^HIS|||||||20261203080000|||1301^俞^海峰",
            "OBR|1|O1^HIS||2345-7^血糖^LN|||||||||||||1301^俞^海峰",
        ]
    )
    resources = normalize(Message(order)).resources
    (doctor,) = of(resources, "Practitioner")  # named three times, kept once
    (request,) = of(resources, "ServiceRequest")
    assert request["requester"]["reference"] == f"Practitioner/{doctor['id']}"
    assert doctor["name"][0]["text"] == "俞海峰"
