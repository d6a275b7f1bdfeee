"""The search-parameter path compiler against fhirpathpy, an independent FHIRPath engine."""

import json
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from fhir_profiles.fhirpath import UnsupportedPathError, compile_expression
from fhir_profiles.search_params import SUPPORTED_TYPES, params_for, registry
from tests.fixtures.examples import EXAMPLES, OBSERVATION, PATIENT


def test_every_search_parameter_of_the_supported_types_compiles() -> None:
    total = sum(len(params) for params in registry().values())
    assert total > 900
    assert set(registry()) == set(SUPPORTED_TYPES)
    assert {"identifier", "name", "birthdate", "gender", "phone"} <= set(params_for("Patient"))


def _canonical(values: list[Any]) -> list[str]:
    return sorted(json.dumps(value, sort_keys=True, default=str) for value in values)


def _concrete(expression: str, resource: dict[str, Any]) -> str:
    """fhirpathpy does not apply ``Resource.x`` to subtypes; name the concrete type instead."""
    for root in ("DomainResource.", "Resource."):
        if expression.startswith(root):
            return str(resource["resourceType"]) + "." + expression.removeprefix(root)
    return expression


@pytest.mark.parametrize("resource", EXAMPLES, ids=lambda r: r["resourceType"])
def test_walkers_agree_with_fhirpathpy(resource: dict[str, Any]) -> None:
    compared = 0
    for param in params_for(resource["resourceType"]).values():
        if "resolve()" in param.expression or "exists()" in param.expression:
            continue  # fhirpathpy cannot resolve references; covered below
        expected = evaluate(resource, _concrete(param.expression, resource), model=models["r4"])
        assert _canonical(param.walker(resource)) == _canonical(expected), param.code
        compared += 1
    assert compared > 10


def test_resolve_is_decided_by_the_reference_type() -> None:
    walker = compile_expression("Observation.subject.where(resolve() is Patient)", "Observation")
    assert walker is not None
    assert walker(OBSERVATION) == [{"reference": "Patient/p1"}]
    group = {**OBSERVATION, "subject": {"reference": "Group/g1"}}
    assert walker(group) == []
    absolute = {**OBSERVATION, "subject": {"reference": "https://hub.example/fhir/Patient/p9"}}
    assert walker(absolute) == [absolute["subject"]]


def test_deceased_is_indexed_unless_false() -> None:
    param = params_for("Patient")["deceased"]
    assert param.walker(PATIENT) == []
    assert param.walker({**PATIENT, "deceasedBoolean": True}) == [True]
    dead = {k: v for k, v in PATIENT.items() if k != "deceasedBoolean"}
    assert param.walker({**dead, "deceasedDateTime": "2026-01-01"}) == ["2026-01-01"]


def test_expressions_beyond_the_subset_are_refused() -> None:
    with pytest.raises(UnsupportedPathError):
        compile_expression("Patient.name.select(given.first())", "Patient")


def test_parts_for_other_types_are_left_out() -> None:
    walker = compile_expression("Patient.name | Practitioner.name", "Practitioner")
    assert walker is not None
    assert walker(PATIENT) == []
