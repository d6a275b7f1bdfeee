"""Numbers as LIS send them: beyond the analyser's range (``>33.3``, as NM or as ST with a
unit), SN with a comparator, a range or a titre. They become FHIR quantities the critical-value
desk can hold against its limits: ``>33.3 mmol/L`` glucose is above the 22.2 limit whatever the
true value, and ``<0.5`` of a lower limit of 2.8 is below it."""

from typing import Any

import pytest

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.lab.critical_check import FindingKind, check, shown_value

HEAD = (
    "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20260305101244||ORU^R01^ORU_R01|N{n}|P|2.5\r"
    "PID|1||F0001^^^JHYY^PI||张^三||19850930|M\r"
    "OBR|1|A1^HIS|B1^LIS|GLU^葡萄糖^L|||20260305100000\r"
)
PATIENT = {"resourceType": "Patient", "birthDate": "1985-09-30", "gender": "male"}


def value_of(obx: str, n: int = 1) -> dict[str, Any]:
    resources = normalize(Message(HEAD.format(n=n) + obx)).resources
    (observation,) = [r for r in resources if r["resourceType"] == "Observation"]
    return {k: v for k, v in observation.items() if k.startswith("value")}


@pytest.mark.parametrize(
    ("obx", "value"),
    [
        (
            "OBX|1|NM|GLU^葡萄糖^L||>33.3|mmol/L|3.9-6.1|HH|||F",
            {"valueQuantity": {"value": 33.3, "comparator": ">", "unit": "mmol/L"}},
        ),
        (
            "OBX|1|ST|GLU^葡萄糖^L||>33.3|mmol/L|3.9-6.1|HH|||F",
            {"valueQuantity": {"value": 33.3, "comparator": ">", "unit": "mmol/L"}},
        ),
        (
            "OBX|1|SN|GLU^葡萄糖^L||<^0.5|mmol/L|3.9-6.1|LL|||F",
            {"valueQuantity": {"value": 0.5, "comparator": "<", "unit": "mmol/L"}},
        ),
        ("OBX|1|NM|GLU^葡萄糖^L||5.6|mmol/L|3.9-6.1||||F", {"valueQuantity": {"value": 5.6}}),
        (
            "OBX|1|SN|GLU^葡萄糖^L||^10^-^20|mmol/L||||F",
            {"valueRange": {"low": {"value": 10}, "high": {"value": 20}}},
        ),
        (
            "OBX|1|SN|GLU^葡萄糖^L||^1^:^128|||||F",
            {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
        ),
        ("OBX|1|SN|GLU^葡萄糖^L||^2^+|||||F", {"valueString": "2+"}),
        ("OBX|1|ST|GLU^葡萄糖^L||溶血|||||F", {"valueString": "溶血"}),
    ],
)
def test_a_value_becomes_what_it_says(obx: str, value: dict[str, Any]) -> None:
    found = value_of(obx)
    assert list(found) == list(value)
    (kind, expected) = next(iter(value.items()))
    if isinstance(expected, str):  # text stays text
        assert found[kind] == expected
        return
    for key, wanted in expected.items():
        got = found[kind][key]
        if isinstance(wanted, dict):
            assert {k: got[k] for k in wanted} == wanted
        else:
            assert got == wanted


@pytest.mark.parametrize(
    ("obx", "kind"),
    [
        ("OBX|1|NM|GLU^葡萄糖^L||>33.3|mmol/L|3.9-6.1|HH|||F", FindingKind.HIGH),
        ("OBX|1|SN|GLU^葡萄糖^L||<^0.5|mmol/L|3.9-6.1|LL|||F", FindingKind.LOW),
        ("OBX|1|NM|GLU^葡萄糖^L||>20|mmol/L|3.9-6.1|H|||F", FindingKind.INDETERMINATE),
    ],
)
def test_a_value_beyond_the_range_is_held_against_the_limits(obx: str, kind: str) -> None:
    resources = normalize(Message(HEAD.format(n=1) + obx)).resources
    (observation,) = [r for r in resources if r["resourceType"] == "Observation"]
    findings = check(observation, PATIENT)
    assert [f.kind for f in findings] == [kind]


@pytest.mark.parametrize(
    ("obx", "shown"),
    [
        ("OBX|1|NM|GLU^葡萄糖^L||>33.3|mmol/L|3.9-6.1|HH|||F", ">33.3 mmol/L"),
        ("OBX|1|SN|GLU^葡萄糖^L||^10^-^20|mmol/L||||F", "10-20 mmol/L"),
        ("OBX|1|SN|GLU^葡萄糖^L||^1^:^128|||||F", "1:128"),
    ],
)
def test_the_screen_shows_the_value_as_sent(obx: str, shown: str) -> None:
    resources = normalize(Message(HEAD.format(n=1) + obx)).resources
    (observation,) = [r for r in resources if r["resourceType"] == "Observation"]
    assert shown_value(observation) == shown


def test_the_method_and_the_analyser_of_each_result() -> None:
    """OBX-17 and OBX-18, which the A4 lab report prints: one Device for the analyser however
    many results name it, written only where the store has none."""
    obx = "OBX|{n}|NM|GLU^葡萄糖^L||5.{n}|mmol/L|3.9-6.1||||F||||||{method}|{device}"
    lines = [obx.format(n=n, method="GOD^葡萄糖氧化酶法^L", device="AU5800-01^LIS") for n in (1, 2)]
    lines.append(obx.format(n=3, method="", device=""))
    mapped = normalize(Message(HEAD.format(n=1) + "\r".join(lines)))
    devices = [r for r in mapped.resources if r["resourceType"] == "Device"]
    (device,) = devices
    assert device["identifier"] == [{"system": "urn:jianhu:sid:device:lis", "value": "AU5800-01"}]
    assert mapped.mode(device).value == "if-absent"
    observations = [r for r in mapped.resources if r["resourceType"] == "Observation"]
    assert [o.get("device") for o in observations] == [
        {"reference": f"Device/{device['id']}"},
        {"reference": f"Device/{device['id']}"},
        None,
    ]
    assert observations[0]["method"]["coding"][0]["code"] == "GOD"
    assert "method" not in observations[2]


@pytest.mark.parametrize(
    ("obx", "value"),
    [
        ("OBX|1|SN|GLU^葡萄糖^L||=^1.9|mmol/L||||F", {"valueQuantity": 1.9}),  # "=": exactly
        ("OBX|1|NM|GLU^葡萄糖^L||1_5|mmol/L||||F", {"valueString": "1_5"}),
        ("OBX|1|NM|GLU^葡萄糖^L||1e3|mmol/L||||F", {"valueString": "1e3"}),
    ],
)
def test_only_plain_decimals_are_numbers(obx: str, value: dict[str, Any]) -> None:
    found = value_of(obx)
    (kind, wanted) = next(iter(value.items()))
    assert list(found) == [kind]
    if kind == "valueQuantity":
        assert found[kind]["value"] == wanted
        assert "comparator" not in found[kind]
    else:
        assert found[kind] == wanted
