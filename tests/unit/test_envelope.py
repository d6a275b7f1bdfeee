import pytest
from pydantic import ValidationError

from hub.base.envelope import Envelope

PATIENT = "PID|||330602199001011234||张三"


def make(body: bytes = PATIENT.encode()) -> Envelope:
    return Envelope(
        type="hl7v2.ADT.A01", source="HIS", content_type="x-application/hl7-v2+er7", body=body
    )


def test_round_trips_through_json_text_and_binary_bodies() -> None:
    text, binary = make(), make(b"\x00\xff\x0b")
    assert Envelope.from_json(text.to_json()) == text
    assert Envelope.from_json(binary.to_json()) == binary
    assert b'"body":"PID' in text.to_json()  # readable in the management console


def test_repr_and_str_hide_the_payload() -> None:
    envelope = make()
    for shown in (repr(envelope), str(envelope)):
        assert "张三" not in shown
        assert "330602" not in shown
        assert envelope.id in shown


def test_is_frozen_and_changes_make_a_copy() -> None:
    envelope = make()
    with pytest.raises(ValidationError):
        envelope.source = "LIS"  # type: ignore[misc]
    changed = envelope.evolve(source="LIS")
    assert (envelope.source, changed.source, changed.id) == ("HIS", "LIS", envelope.id)


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [make().id for _ in range(200)]
    assert len(set(ids)) == 200
    assert ids == sorted(ids)


def test_caused_keeps_correlation_and_points_back() -> None:
    first = make()
    child = first.caused("fhir.Patient.created", "application/fhir+json", b"{}")
    grandchild = child.caused("fhir.Encounter.created", "application/fhir+json", b"{}")
    assert child.causation_id == first.id
    assert child.correlation_id == first.id
    assert grandchild.correlation_id == first.id
    assert grandchild.causation_id == child.id
