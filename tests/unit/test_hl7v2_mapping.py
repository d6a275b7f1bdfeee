"""Every corpus message with a mapping gives valid FHIR R4: each resource passes the same
validation as the FHIR API, ids are unique, and every reference between the produced resources
points at one of them. A second mapping of the same message gives the same ids (idempotent)."""

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_profiles.validation import validate
from hub.fhir.references import references_in
from hub.hl7v2.mapping import MAPPINGS, UnmappedMessageError, normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))


def message_of(file: str) -> Message:
    entry = next(e for e in MANIFEST if e["file"] == file)
    return Message((CORPUS / file).read_bytes().decode(entry["charset"]), entry["charset"])


MAPPED = [e for e in MANIFEST if tuple(e["type"].split("^")) in MAPPINGS]


@pytest.mark.parametrize("entry", MAPPED, ids=[e["file"] for e in MAPPED])
def test_mapped_resources_are_valid_and_linked(entry: dict[str, Any]) -> None:
    resources = normalize(message_of(entry["file"])).resources
    assert resources
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    assert len(keys) == len(set(keys)), "a message must not produce the same resource twice"
    for resource in resources:
        errors = [i for i in validate(resource) if i.severity in ("error", "fatal")]
        assert not errors, (resource["resourceType"], [i.diagnostics for i in errors])
        for found in references_in(resource):
            if found.startswith(
                (
                    "Patient/",
                    "Encounter/",
                    "Specimen/",
                    "Observation/",
                    "Condition/",
                    "AllergyIntolerance/",
                    "Coverage/",
                    "RelatedPerson/",
                    "Organization/",
                    "DocumentReference/",
                )
            ):
                assert found in keys, f"{resource['resourceType']} points at a missing {found}"
    again = [
        f"{r['resourceType']}/{r['id']}" for r in normalize(message_of(entry["file"])).resources
    ]
    assert again == keys


def test_every_type_of_the_corpus_is_mapped() -> None:
    assert MAPPED == MANIFEST


def test_a_type_without_mapping_is_named() -> None:
    message = Message("MSH|^~\\&|LIS|JHYY|HUB|JHYY|20261126||ORR^O02|C1|P|2.5\rMSA|AA|X\r")
    with pytest.raises(UnmappedMessageError, match="ORR\\^O02"):
        normalize(message)
