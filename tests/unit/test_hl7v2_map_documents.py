"""MDM^T02 to DocumentReference + Binary: the corpus discharge summary (text lines) and the
consent form (a base64 PDF beside a summary line), plus hand-written bad messages."""

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
DISCHARGE = "39-emr-mdm-t02-discharge-summary.hl7"
CONSENT = "40-emr-mdm-t02-consent-pdf.hl7"


def corpus(file: str) -> Message:
    charset = next(e["charset"] for e in MANIFEST if e["file"] == file)
    return Message((CORPUS / file).read_bytes().decode(charset), charset)


def by_type(message: Message) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in normalize(message).resources:
        found.setdefault(resource["resourceType"], []).append(resource)
    return found


def sha1_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def test_discharge_summary_lines_become_one_text_binary() -> None:
    resources = by_type(corpus(DISCHARGE))
    (document,) = resources["DocumentReference"]
    (binary,) = resources["Binary"]
    body = base64.b64decode(binary["data"])
    text = body.decode("utf-8")
    assert text.splitlines()[0].startswith("【入院情况】患者因“反复胸闷气促5年")
    assert text.splitlines()[3].startswith("【出院医嘱】1. 低盐饮食")
    assert len(text.splitlines()) == 4
    assert binary["contentType"] == "text/plain; charset=utf-8"
    assert binary["securityContext"] == {"reference": f"DocumentReference/{document['id']}"}
    attachment = document["content"][0]["attachment"]
    assert attachment["url"] == f"Binary/{binary['id']}"
    assert attachment["size"] == len(body)
    assert attachment["hash"] == sha1_base64(body)
    assert attachment["title"] == "出院小结"
    assert attachment["creation"] == "2026-03-11T09:30:00+08:00"  # TXA-6


def test_discharge_summary_document_reference_from_txa() -> None:
    resources = by_type(corpus(DISCHARGE))
    (document,) = resources["DocumentReference"]
    (visit,) = resources["Encounter"]
    assert document["masterIdentifier"] == {
        "system": "urn:jianhu:sid:document:emr",
        "value": "DOC20260311000044",
    }
    assert document["status"] == "current"  # TXA-19 AV
    assert document["docStatus"] == "final"  # TXA-17 AU
    assert document["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "18842-5",
        "display": "出院小结",
    }
    assert document["category"][0]["coding"][0]["code"] == "DS"
    assert [a["display"] for a in document["author"]] == ["沈冰", "陆志明"]  # TXA-9, TXA-5
    assert document["authenticator"]["display"] == "陆志明"  # TXA-22, TXA-10 being empty
    assert document["authenticator"]["identifier"]["value"] == "1045"
    assert document["securityLabel"][0]["coding"][0]["code"] == "R"
    assert document["context"]["encounter"] == [{"reference": f"Encounter/{visit['id']}"}]
    assert document["context"]["period"] == {"start": "2026-03-11T09:55:00+08:00"}  # TXA-4
    assert document["subject"] == {"reference": f"Patient/{resources['Patient'][0]['id']}"}


def test_consent_pdf_bytes_are_the_decoded_ed_data() -> None:
    message = corpus(CONSENT)
    ed = next(obx for obx in message["OBX"] if obx.value(2) == "ED")
    sent = base64.b64decode(ed.value(5, 5))
    resources = by_type(message)
    (document,) = resources["DocumentReference"]
    (binary,) = resources["Binary"]
    stored = base64.b64decode(binary["data"])
    assert stored == sent
    assert stored.startswith(b"%PDF-1.4")
    assert binary["contentType"] == "application/pdf"  # ED.2 / ED.3
    attachment = document["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert attachment["hash"] == sha1_base64(sent)
    assert attachment["size"] == len(sent)
    assert attachment["title"] == "手术知情同意书_杨丽_20260308.pdf"  # TXA-16
    assert attachment["url"] == f"Binary/{binary['id']}"
    # The TX line beside the PDF summarises it; it is not a second body.
    assert document["description"] == "拟行腹腔镜胆囊切除术，患者本人已签字确认。"
    assert document["type"]["coding"][0]["code"] == "64293-4"
    assert document["docStatus"] == "final"  # TXA-17 LA


def test_a_resend_under_a_new_control_id_updates_the_same_resources() -> None:
    text = (CORPUS / DISCHARGE).read_bytes().decode("utf-8")
    resent = text.replace("EMR-20260311-095822-0044", "EMR-20260311-100000-0099")
    first = [(r["resourceType"], r["id"]) for r in normalize(Message(text)).resources]
    again = [(r["resourceType"], r["id"]) for r in normalize(Message(resent)).resources]
    assert first == again


MSH = "MSH|^~\\&|EMR|JHYY|JIANHU|JHYY|20260401080000||MDM^T02^MDM_T02|T1|P|2.5"
PID = "PID|1||10099999^^^JHYY^PI||测试^患者||19800101|F"
TXA = "TXA|1|PN|TX|20260401075000|2001^周^敏|20260401074500||||||DOC1^EMR|||||IP||CA"


def mdm(*segments: str) -> Message:
    return Message("\r".join((MSH, *segments)))


def test_txa_statuses_come_from_the_tables() -> None:
    resources = by_type(mdm(PID, TXA, "OBX|1|TX|^病程记录||首次病程记录。"))
    (document,) = resources["DocumentReference"]
    assert document["docStatus"] == "preliminary"  # IP in progress
    assert document["status"] == "entered-in-error"  # CA cancelled
    assert "Encounter" not in resources  # no PV1
    assert document["context"] == {"period": {"start": "2026-04-01T07:50:00+08:00"}}
    assert document["date"] == "2026-04-01T07:45:00+08:00"  # TXA-6


def test_invalid_base64_is_a_clear_error() -> None:
    broken = "OBX|1|ED|^病历||EMR^application^pdf^Base64^JVBERi0x*not-base64*||||||F"
    with pytest.raises(ValueError, match="not valid base64"):
        normalize(mdm(PID, TXA, broken))


def test_an_unknown_ed_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ED\.4 encoding"):
        normalize(mdm(PID, TXA, "OBX|1|ED|^病历||EMR^application^pdf^UUEncode^abc||||||F"))


@pytest.mark.parametrize(
    ("segments", "problem"),
    [
        ((PID, "OBX|1|TX|^病历||文本"), "no TXA"),
        ((PID, TXA.replace("DOC1^EMR", ""), "OBX|1|TX|^病历||文本"), "TXA-12"),
        ((PID, TXA), "no document content"),
        ((TXA, "OBX|1|TX|^病历||文本"), "no PID"),
        ((PID, TXA, "OBX|1|NM|^体温||36.5"), "cannot be document content"),
    ],
)
def test_a_message_without_what_the_mapping_needs_fails(
    segments: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        normalize(mdm(*segments))


def test_formatted_text_line_breaks_and_repetitions_become_lines() -> None:
    obx = "OBX|1|FT|^病程记录||第一行\\.br\\第二行~第三行"
    resources = by_type(mdm(PID, TXA, obx))
    (binary,) = resources["Binary"]
    assert base64.b64decode(binary["data"]).decode("utf-8") == "第一行\n第二行\n第三行"
