"""The LIS's status messages, field by field, with the corpus's messages: ORL^O22 to a Task on
the order, SSU^U03 to each tube's Specimen, keyed as the order's own Specimen is."""

import pytest

from hub.base.errors import MappingError
from hub.hl7v2.mapping import WriteMode, normalize
from hub.hl7v2.mapping.orders import service_request_id
from hub.hl7v2.message import Message
from tests.unit.corpus import mapped, of


def test_an_order_acknowledgement_is_a_task_on_the_order() -> None:
    resources = mapped("56-").resources
    (task,) = of(resources, "Task")
    request = service_request_id("EMR", "JC2612030056")
    assert task["focus"] == {"reference": f"ServiceRequest/{request}"}
    assert (task["status"], task["intent"]) == ("in-progress", "order")  # OK, then IP
    assert task["businessStatus"]["coding"][0]["code"] == "IP"
    assert task["owner"] == {"display": "LIS"}
    assert task["lastModified"] == "2026-12-03T11:34:00+08:00"
    (tube,) = task["input"]
    assert tube["valueReference"]["reference"].startswith("Specimen/spc-")
    assert task["for"]["reference"] == f"Patient/{of(resources, 'Patient')[0]['id']}"


def test_a_status_update_merges_into_each_tube_s_specimen() -> None:
    result = mapped("57-")
    received, unavailable = of(result.resources, "Specimen")
    ordered = of(mapped("56-").resources, "Task")[0]["input"][0]["valueReference"]
    assert f"Specimen/{received['id']}" == ordered["reference"]  # the order's own tube
    assert result.mode(received) is WriteMode.MERGE  # what the order said of it stays
    (step,) = received["processing"]
    assert step["procedure"]["coding"][0]["code"] == "REC"
    assert step["description"] == "已签收"
    assert step["timeDateTime"] == "2026-12-03T11:44:00+08:00"  # EQU-2
    assert received["accessionIdentifier"]["value"] == "A2612030056"
    assert "status" not in received
    assert unavailable["status"] == "unavailable"


def test_a_status_message_without_its_subject_is_refused() -> None:
    header = "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20261203||SSU^U03^SSU_U03|X1|P|2.5\r"
    with pytest.raises(MappingError, match="no container"):
        normalize(Message(header + "EQU|EQ1|20261203\rSAC|||\r"))
    orl = "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20261203||ORL^O22^ORL_O22|X2|P|2.5\rMSA|AA|Y\r"
    with pytest.raises(MappingError, match="no ORC"):
        normalize(Message(orl))
    with pytest.raises(MappingError, match="placer order number"):
        normalize(Message(orl + "ORC|OK|||\r"))
