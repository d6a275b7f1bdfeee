"""The relay's change sets: consecutive events of one routing key become one Bundle of type
``history`` that the consumers read back entry by entry, in the order they were written."""

from dataclasses import replace

import orjson
import pytest

from hub.base.envelope import Envelope
from hub.base.errors import PermanentError
from hub.events import SET_BYTES, SET_ENTRIES, change_set_envelope, change_sets, read_change_set
from store.resources import OutboxEvent


def event(seq: int, type_: str, id_: str, version: int, deleted: bool = False) -> OutboxEvent:
    change = "deleted" if deleted else "created" if version == 1 else "updated"
    body = None if deleted else orjson.dumps({"resourceType": type_, "id": id_, "seq": seq})
    return OutboxEvent(seq, f"fhir.{type_}.{change}", type_, id_, version, body)


def round_trip(events: list[OutboxEvent]) -> list[tuple[str, str, int, str, int | None]]:
    read = []
    for run in change_sets(events):
        envelope = Envelope.from_json(change_set_envelope(run).to_json())  # as on the wire
        assert envelope.headers["entries"] == str(len(run))
        for c in read_change_set(envelope, run[0].topic):
            read.append((c.type, c.id, c.version, c.change, (c.resource or {}).get("seq")))
    return read


def test_a_message_of_ten_results_is_one_set_and_order_is_kept() -> None:
    events = [event(1, "Patient", "p", 2), event(2, "Specimen", "s", 1)]
    events += [event(3 + n, "Observation", f"o{n}", 1) for n in range(10)]
    events += [event(13, "Specimen", "s", 2), event(14, "Observation", "o0", 2)]
    events += [event(15, "Observation", "o1", 3, deleted=True)]
    runs = list(change_sets(events))
    assert [(run[0].topic, len(run)) for run in runs] == [
        ("fhir.Patient.updated", 1),
        ("fhir.Specimen.created", 1),
        ("fhir.Observation.created", 10),
        ("fhir.Specimen.updated", 1),
        ("fhir.Observation.updated", 1),
        ("fhir.Observation.deleted", 1),
    ]
    read = round_trip(events)
    assert [(t, i, v) for t, i, v, _, _ in read] == [(e.type, e.id, e.version) for e in events]
    assert read[-1] == ("Observation", "o1", 3, "deleted", None)
    assert read[2] == ("Observation", "o0", 1, "created", 3)


def test_a_set_holds_one_correlation_and_its_envelope_carries_it() -> None:
    """Two messages' results written one after the other are two sets: what the consumers do
    because of each is traced to its own message."""
    first = [replace(event(n, "Observation", f"a{n}", 1), correlation="m1") for n in range(3)]
    second = [replace(event(n, "Observation", f"b{n}", 1), correlation="m2") for n in range(3, 5)]
    runs = list(change_sets(first + second))
    assert [len(run) for run in runs] == [3, 2]
    envelopes = [Envelope.from_json(change_set_envelope(run).to_json()) for run in runs]
    assert [e.correlation_id for e in envelopes] == ["m1", "m2"]


def test_sets_are_bounded_by_entries_and_bytes() -> None:
    many = [event(n, "Observation", f"o{n}", 1) for n in range(SET_ENTRIES * 2 + 5)]
    assert [len(run) for run in change_sets(many)] == [SET_ENTRIES, SET_ENTRIES, 5]
    big = orjson.dumps({"resourceType": "Binary", "id": "b", "data": "x" * (SET_BYTES // 3)})
    heavy = [OutboxEvent(n, "fhir.Binary.created", "Binary", f"b{n}", 1, big) for n in range(7)]
    assert [len(run) for run in change_sets(heavy)] == [2, 2, 2, 1]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"resourceType": "Bundle", "type": "batch", "entry": []}',
        b'{"resourceType": "Bundle", "type": "history", "entry": [{"resource": {}}]}',
        b'{"resourceType": "Bundle", "type": "history", "entry": [{"fullUrl": "Patient/p",'
        b' "response": {"etag": "W/\\"x\\""}}]}',
        b'{"resourceType": "Bundle", "type": "history", "entry": [{"fullUrl": "Patient/p",'
        b' "response": {"etag": "W/\\"2\\""}}]}',  # an update without its resource
    ],
)
def test_what_is_not_a_change_set_is_refused_for_good(body: bytes) -> None:
    envelope = Envelope(
        type="fhir.Patient.updated", source="x", content_type="application/fhir+json", body=body
    )
    with pytest.raises(PermanentError):
        read_change_set(envelope, "fhir.Patient.updated")


def test_a_routing_key_that_is_no_change_is_refused() -> None:
    envelope = change_set_envelope([event(1, "Patient", "p", 1)])
    with pytest.raises(PermanentError):
        read_change_set(envelope, "fhir.Patient")


def test_an_event_of_one_resource_from_before_an_upgrade_is_still_read() -> None:
    """Relayed by the previous version (the bare resource, its version in a header) and still
    in a queue when the hub was upgraded."""
    body = orjson.dumps({"resourceType": "Patient", "id": "p", "active": True})
    headers = {"resource-type": "Patient", "resource-id": "p"}
    headers["resource-version"] = "Patient/p/_history/4"
    old = Envelope(
        type="fhir.Patient.updated", source="fhir-store", content_type="application/fhir+json",
        body=body, headers=headers,
    )  # fmt: skip
    [change] = read_change_set(old, "fhir.Patient.updated")
    assert (change.type, change.id, change.version, change.change) == ("Patient", "p", 4, "updated")
    assert change.resource == orjson.loads(body)
    [gone] = read_change_set(old, "fhir.Patient.deleted")
    assert gone.resource is None
    broken = old.model_copy(update={"headers": {"resource-version": "Patient/p"}})
    with pytest.raises(PermanentError):
        read_change_set(broken, "fhir.Patient.updated")
