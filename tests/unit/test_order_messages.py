"""A ServiceRequest as an order message: the forms a performer may take, the placer number the
result must echo, what a version says to do, and the kind of order from its category."""

from typing import Any

import pytest

from hub.hl7v2.mapping.orders import service_request_id
from hub.hl7v2.message import Message
from hub.orders.messages import Order, control_id, order_message
from hub.orders.outbound import kind_of

REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "id": "01a23e00-1111-7222-8333-444455556666",
    "meta": {"versionId": "2"},
    "status": "active",
    "intent": "order",
    "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "胸部CT"}]},
    "authoredOn": "2026-12-03T09:30:00+08:00",
    "identifier": [
        {"type": {"coding": [{"code": "FILL"}]}, "system": "urn:jianhu:sid:filler-order:pacs",
         "value": "F9"}
    ],
    "requester": {"display": "俞海峰"},
}  # fmt: skip
PATIENT = {"identifier": [{"value": "P1", "system": "urn:x:jhyy"}], "name": [{"text": "王芳"}]}


def order(message: str, control: str = "NW") -> Message:
    text = order_message(Order(REQUEST, PATIENT, None, control, message, "PACS", "JHYY"))
    return Message(text)


@pytest.mark.parametrize("form", ["ORM^O01", "OML^O21", "OMI^O23"])
def test_each_form_carries_the_placer_number_the_result_echoes(form: str) -> None:
    message = order(form)
    code, event, structure = message.message_type
    assert (f"{code}^{event}", structure) == (form, form.replace("^", "_"))
    orc, obr = message.first("ORC"), message.first("OBR")
    assert orc is not None
    assert obr is not None
    assert (orc.value(2, 1), orc.value(2, 2)) == (REQUEST["id"], "JIANHU")
    assert obr.value(2, 1) == REQUEST["id"]
    assert (obr.value(3, 1), obr.value(3, 2)) == ("F9", "pacs")  # the filler's own number
    assert obr.value(16, 2) == "俞海峰"
    assert service_request_id("JIANHU", obr.value(2, 1)) == REQUEST["id"]  # the same order
    assert message.control_id == control_id(REQUEST["id"], "2")
    assert (message.first("PID").value(5), message.first("PV1").value(2)) == ("王芳", "U")  # type: ignore[union-attr]


def test_an_imaging_order_says_which_study_the_pacs_is_to_make() -> None:
    ipc = order("OMI^O23").first("IPC")
    assert ipc is not None
    assert ipc.value(1, 1) == REQUEST["id"]
    study = ipc.value(3)
    assert study.startswith("2.25.")
    assert study == order("OMI^O23").first("IPC").value(3)  # type: ignore[union-attr]
    assert order("ORM^O01").first("IPC") is None


def test_the_control_code_is_what_the_version_says() -> None:
    assert order("ORM^O01", "CA").first("ORC").value(1) == "CA"  # type: ignore[union-attr]


def test_a_number_in_the_hubs_namespace_must_be_an_id_to_be_taken_as_one() -> None:
    assert service_request_id("JIANHU", "not an id!").startswith("req-")
    assert service_request_id("HIS", REQUEST["id"]).startswith("req-")


@pytest.mark.parametrize(
    ("coding", "kind"),
    [
        ({"system": "http://snomed.info/sct", "code": "108252007"}, "laboratory"),
        ({"system": "http://snomed.info/sct", "code": "363679005"}, "imaging"),
        ({"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "CT"}, "imaging"),
        ({"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "HM"}, "laboratory"),
        ({"system": "http://snomed.info/sct", "code": "409063005"}, None),  # counselling
    ],
)
def test_the_kind_of_order_comes_from_its_category(coding: dict[str, str], kind: str) -> None:
    assert kind_of({"category": [{"coding": [coding]}]}) == kind
    assert kind_of({}) is None
