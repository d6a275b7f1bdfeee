"""Pharmacy, field by field, with the corpus's fever-clinic messages: an oseltamivir
prescription (RDE^O11) and its first dose given (RAS^O17), which meet by the order number."""

import pytest

from hub.base.errors import MappingError
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from tests.unit.corpus import CORPUS, corpus, one


def test_a_prescription_is_a_medication_request() -> None:
    resources = corpus("54-")
    request = one(resources, "MedicationRequest")
    assert (request["status"], request["intent"]) == ("active", "order")
    drug = request["medicationCodeableConcept"]["coding"][0]
    assert (drug["code"], drug["display"]) == ("XP86A0001", "磷酸奥司他韦胶囊")
    assert request["identifier"] == [
        {"system": "urn:jianhu:sid:placer-order:his", "value": "CF2612030090001"}
    ]
    assert request["authoredOn"] == "2026-12-03T11:25:00+08:00"
    assert request["requester"]["display"] == "俞海峰"
    assert request["encounter"]["reference"] == f"Encounter/{one(resources, 'Encounter')['id']}"
    (dosage,) = request["dosageInstruction"]
    assert dosage["doseAndRate"] == [
        {
            "doseQuantity": {
                "value": 75,
                "unit": "毫克",
                "code": "mg",
                "system": "http://unitsofmeasure.org",
            }
        }
    ]
    assert dosage["timing"]["code"]["coding"][0]["code"] == "BID"
    assert dosage["route"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0162",
        "code": "PO",
        "display": "口服",
    }
    assert dosage["text"] == "口服，每次1粒，每日2次，疗程5天"
    assert request["dispenseRequest"]["quantity"]["value"] == 10


def test_an_administration_carries_out_its_prescription() -> None:
    prescribed = one(corpus("54-"), "MedicationRequest")
    resources = corpus("55-")
    given = one(resources, "MedicationAdministration")
    assert given["request"] == {"reference": f"MedicationRequest/{prescribed['id']}"}
    assert (given["status"], given["effectiveDateTime"]) == (
        "completed",
        "2026-12-03T12:00:00+08:00",
    )
    assert given["dosage"]["dose"]["value"] == 75
    assert given["dosage"]["route"]["coding"][0]["code"] == "PO"
    assert given["performer"][0]["actor"]["display"] == "孙护士"
    assert given["context"]["reference"].startswith("Encounter/")


def test_a_pharmacy_message_without_its_drug_is_refused() -> None:
    text = (CORPUS / "54-his-rde-o11-oseltamivir.hl7").read_text("utf-8")
    without = text.replace("XP86A0001^磷酸奥司他韦胶囊^HISDRUG", "")
    with pytest.raises(MappingError, match="RXE-2 names no drug"):
        normalize(Message(without))
    no_time = (CORPUS / "55-his-ras-o17-oseltamivir-given.hl7").read_text("utf-8")
    with pytest.raises(MappingError, match="RXA-3"):
        normalize(Message(no_time.replace("|20261203120000|20261203120000|", "|||")))
