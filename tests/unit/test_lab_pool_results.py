"""Reading the LIS's result on a pool tube: only a final result of a pooled test on the pool
Specimen itself counts; positive and negative by code or word; anything else is a person's."""

from typing import Any

import pytest

from hub.base.json import Json
from hub.lab.pool_results import Reading, pool_result, result_rules
from hub.lab.pool_tube import load_rules, pool_id

BARCODE = "HJ261126000001"
RULES = load_rules()


def tube(barcode: str = BARCODE, id_: str | None = None) -> Json:
    return {
        "resourceType": "Specimen",
        "id": id_ or pool_id(barcode, RULES),
        "identifier": [{"system": RULES.barcode_system, "value": barcode}],
    }


def result(status: str = "final", code: str = "94500-6", **value: Any) -> Json:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        **value,
    }


@pytest.mark.parametrize(
    ("value", "reading"),
    [
        ({"valueString": "阳性"}, Reading.POSITIVE),
        ({"valueString": " 阴性 "}, Reading.NEGATIVE),
        ({"valueCodeableConcept": {"coding": [{"code": "260373001"}]}}, Reading.POSITIVE),
        ({"valueCodeableConcept": {"coding": [{"code": "260415000"}]}}, Reading.NEGATIVE),
        ({"interpretation": [{"coding": [{"code": "POS"}]}]}, Reading.POSITIVE),
        ({"interpretation": [{"coding": [{"code": "NEG"}]}]}, Reading.NEGATIVE),
        ({"valueString": "无效，需重采"}, Reading.UNREADABLE),
        # the value and the flag disagree: nobody guesses
        (
            {"valueString": "阴性", "interpretation": [{"coding": [{"code": "POS"}]}]},
            Reading.UNREADABLE,
        ),
    ],
)
def test_a_pool_result_is_read_by_code_or_word(value: Json, reading: Reading) -> None:
    found = pool_result(result(**value), tube(), RULES, result_rules())
    assert found is not None
    assert (found.barcode, found.reading) == (BARCODE, reading)


def test_only_a_final_result_of_a_pooled_test_on_the_pool_itself_counts() -> None:
    rules = result_rules()
    positive = {"valueString": "阳性"}
    assert pool_result(result("preliminary", **positive), tube(), RULES, rules) is None
    assert pool_result(result(code="2823-3", **positive), tube(), RULES, rules) is None
    assert pool_result(result(**positive), None, RULES, rules) is None
    # a person's own tube with the same barcode system is not the pool
    assert pool_result(result(**positive), tube(id_="spc-other"), RULES, rules) is None
    assert pool_result(result("corrected", **positive), tube(), RULES, rules) is not None
