"""DFT^P03 to ChargeItem: the corpus inpatient day (six lines) and outpatient visit (with a
refund line), the amounts the fee-detail uploads read, and hand-written bad messages."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.hl7v2 import datatypes
from hub.hl7v2.mapping import charges, normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
INPATIENT = "45-his-dft-p03-inpatient-charges.hl7"
OUTPATIENT = "46-his-dft-p03-outpatient-fees.hl7"


def corpus(file: str) -> Message:
    charset = next(e["charset"] for e in MANIFEST if e["file"] == file)
    return Message((CORPUS / file).read_bytes().decode(charset), charset)


def charge_items(message: Message) -> dict[str, dict[str, Any]]:
    """ChargeItems by FT1-2 transaction ID."""
    return {
        r["identifier"][0]["value"]: r
        for r in normalize(message).resources
        if r["resourceType"] == "ChargeItem"
    }


def extension(item: dict[str, Any], url: str) -> Any:
    (found,) = [e for e in item.get("extension", []) if e["url"] == url]
    return next(v for k, v in found.items() if k.startswith("value"))


def money(value: dict[str, Any]) -> Decimal:
    return Decimal(str(value["value"]))


# transaction ID: (fee code, quantity, unit amount FT1-12, extended amount FT1-11)
INPATIENT_LINES = {
    "CF26030300001": ("120100001", 1, "45.00", "45.00"),
    "CF26030300002": ("120100002", 1, "28.00", "28.00"),
    "CF26030300003": ("250101015", 1, "25.00", "25.00"),
    "CF26030300004": ("250403017", 1, "30.00", "30.00"),
    "CF26030300005": ("210300001", 1, "184.00", "184.00"),
    "CF26030300006": ("X-J01DC02", 2, "18.62", "37.24"),
}


def test_each_inpatient_line_keeps_its_amounts() -> None:
    items = charge_items(corpus(INPATIENT))
    assert set(items) == set(INPATIENT_LINES)
    for transaction, (code, quantity, unit, extended) in INPATIENT_LINES.items():
        item = items[transaction]
        assert item["code"]["coding"][0]["code"] == code
        assert item["quantity"] == {"value": quantity}
        assert item["priceOverride"] == {"value": float(extended), "currency": "CNY"}
        unit_price = extension(item, charges.UNIT_PRICE)
        assert unit_price == {"value": float(unit), "currency": "CNY"}
        assert money(unit_price) * quantity == money(item["priceOverride"])


def test_the_lines_add_up_to_the_days_total() -> None:
    # DFT^P03 has no total segment; 349.24 is the HIS's daily bill for 2026-03-03.
    items = charge_items(corpus(INPATIENT)).values()
    assert sum(money(i["priceOverride"]) for i in items) == Decimal("349.24")


def test_an_inpatient_line_carries_what_the_fee_upload_needs() -> None:
    message = corpus(INPATIENT)
    resources = normalize(message).resources
    (visit,) = [r for r in resources if r["resourceType"] == "Encounter"]
    item = charge_items(message)["CF26030300006"]
    assert item["status"] == "billable"
    assert item["code"]["coding"][0]["display"] == "头孢呋辛钠注射液 1.5g"
    assert item["context"] == {"reference": f"Encounter/{visit['id']}"}
    assert item["occurrenceDateTime"] == "2026-03-03"  # FT1-4
    assert item["enteredDate"] == "2026-03-03T23:59:01+08:00"  # FT1-5
    assert item["requestingOrganization"] == {
        "display": "呼吸内科",
        "identifier": {"system": "urn:jianhu:sid:department:his", "value": "0301"},
    }
    roles = {p["function"]["coding"][0]["code"]: p["actor"] for p in item["performer"]}
    assert roles["PRF"]["display"] == roles["OP"]["display"] == "王建国"
    assert roles["OP"]["identifier"]["value"] == "1023"
    assert item["reason"][0]["coding"][0]["code"] == "J18.900"
    insurance = extension(item, charges.INSURANCE_TYPE)
    assert insurance["coding"][0] == {
        "system": "urn:jianhu:codesystem:cv02-01-204-medical-insurance-type",
        "code": "01",
        "display": "城镇职工",
    }
    assert extension(item, charges.TRANSACTION_TYPE) == "CG"


def test_a_refund_is_a_negative_billable_line() -> None:
    items = charge_items(corpus(OUTPATIENT))
    refund = items["SF20260305003884"]
    assert refund["status"] == "billable"
    assert extension(refund, charges.TRANSACTION_TYPE) == "CR"
    assert refund["quantity"] == {"value": -1}
    assert refund["priceOverride"] == {"value": -30.0, "currency": "CNY"}
    assert extension(refund, charges.UNIT_PRICE) == {"value": 30.0, "currency": "CNY"}
    assert refund["enterer"]["display"] == "收费窗口1"  # FT1-24
    assert refund["occurrenceDateTime"] == "2026-03-05T10:05:00+08:00"
    # The refunded C反应蛋白 nets to zero; the visit owes 诊查费 10 + 血常规 25.
    crp = [i for i in items.values() if i["code"]["coding"][0]["code"] == "250403017"]
    assert sum(money(i["priceOverride"]) for i in crp) == 0
    assert sum(money(i["priceOverride"]) for i in items.values()) == Decimal("35.00")


def test_keys_survive_a_resend_and_differ_per_visit() -> None:
    text = (CORPUS / OUTPATIENT).read_bytes().decode("utf-8")
    first = {r["id"] for r in normalize(Message(text)).resources}
    resent = text.replace("HIS202603051010100400", "HIS202603051200000999")
    assert {r["id"] for r in normalize(Message(resent)).resources} == first
    other_visit = text.replace("MZ20260305000388", "MZ20260305000999")
    ids = {r["id"] for r in normalize(Message(other_visit)).resources}
    assert not {i for i in ids if i.startswith("chg-")} & first


def test_a_sender_that_voids_by_transaction_id_maps_its_code_to_entered_in_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    maps = datatypes._maps()
    senders = {**maps["senders"], "HIS": {**maps["senders"].get("HIS", {})}}
    senders["HIS"]["charge_status"] = {"CR": "entered-in-error"}
    monkeypatch.setattr(datatypes, "_maps", lambda: {**maps, "senders": senders})
    refund = charge_items(corpus(OUTPATIENT))["SF20260305003884"]
    assert refund["status"] == "entered-in-error"


MSH = "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20260401080000||DFT^P03^DFT_P03|T1|P|2.5"
PID = "PID|1||10099999^^^JHYY^PI||测试^患者||19800101|F"
PV1 = "PV1|1|O|FRMZ||||||||||||||||||MZ1"


def dft(*segments: str) -> Message:
    return Message("\r".join((MSH, *segments)))


def test_an_unknown_transaction_type_is_unknown_and_no_pv1_means_no_context() -> None:
    ft1 = "FT1|1|T9||20260401|20260401|ZZ|110200001^普通门诊诊查费^HISFEE|||1|10.00&CNY|10.00&CNY"
    (item,) = charge_items(dft(PID, ft1)).values()
    assert item["status"] == "unknown"
    assert "context" not in item


@pytest.mark.parametrize(
    ("segments", "problem"),
    [
        ((PID, PV1), "no FT1"),
        ((PV1, "FT1|1|T1||20260401||CG|110200001^诊查费^HISFEE|||1|10.00|10.00"), "no PID"),
        ((PID, PV1, "FT1|1|||20260401||CG|110200001^诊查费^HISFEE|||1|10.00|10.00"), "FT1 '1'"),
        ((PID, PV1, "FT1|1|T1||20260401||CG||||1|10.00|10.00"), "FT1-7"),
        ((PID, PV1, "FT1|1|T1||20260401||CG|110200001^诊查费^HISFEE|||1|十元|10.00"), "FT1-11"),
        ((PID, PV1, "FT1|1|T1||20260401||CG|110200001^诊查费^HISFEE|||one|10.00|10.00"), "FT1-10"),
    ],
)
def test_a_message_without_what_the_mapping_needs_fails(
    segments: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        normalize(dft(*segments))


def test_a_batch_line_without_transaction_id_is_keyed_by_batch_and_set_id() -> None:
    ft1 = "FT1|3||B20260401|20260401||CG|110200001^诊查费^HISFEE|||1|10.00|10.00"
    (item,) = charge_items(dft(PID, PV1, ft1)).values()
    assert item["identifier"][0]["value"] == "B20260401-3"
    assert "currency" not in item["priceOverride"]


def test_a_free_line_keeps_its_zero_quantity_and_amount() -> None:
    ft1 = "FT1|1|T0||20260401||CG|110200001^诊查费^HISFEE|||0|0.00&CNY|10.00&CNY"
    (item,) = charge_items(dft(PID, PV1, ft1)).values()
    assert item["quantity"] == {"value": 0}
    assert item["priceOverride"] == {"value": 0.0, "currency": "CNY"}
