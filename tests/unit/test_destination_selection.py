"""A destination's configuration checked as it is read, the facts a filter asks about, the
filters over them and the transforms of the text."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.destinations.config import Filter, Transform, parse
from hub.destinations.selection import facts_of, function, header_match, transformed

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "destinations.json"
A08 = (
    "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20261203||ADT^A08^ADT_A01|C4|P|2.5\r"
    "PID|1||P1^^^JHYY^PI~330683198509300572^^^CHN^NNCHN||王^芳\r"
    "PV1|1|E|ICU^01^02|||||||CAR\r"
)


def mllp(name: str, **extra: object) -> dict[str, object]:
    transport = {"kind": "mllp", "host": "lis", "port": 2576}
    return {"name": name, "transport": transport, **extra}


def test_the_shipped_examples_read() -> None:
    names = [d.name for d in parse(json.loads(EXAMPLE.read_text(encoding="utf-8")))]
    assert names == [
        "his-adt-to-lis",
        "orders-to-lis",
        "his-adt-to-pacs",
        "orders-to-pacs",
        "his-adt-to-emr",
        "results-to-his",
        "results-to-emr",
    ]


def test_a_bad_configuration_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="list of destinations"):
        parse({"name": "x"})
    with pytest.raises(ValueError, match="share a name"):
        parse([mllp("lis"), mllp("lis")])
    with pytest.raises(ValidationError, match="lower-case letters"):
        parse([mllp("LIS queue")])
    with pytest.raises(ValidationError, match="kind"):
        parse([{"name": "x", "transport": {"kind": "ftp"}}])
    with pytest.raises(ValidationError, match="port"):
        parse([{"name": "x", "transport": {"kind": "mllp", "host": "h", "port": 0}}])


def test_the_facts_of_a_message() -> None:
    facts = facts_of("a-1", A08, "utf-8", ["Patient/p1", "Encounter/e1"])
    assert facts.message_type == "ADT^A08"
    assert facts.sender == ("HIS", "JHYY")
    assert facts.departments == {"ICU", "CAR"}
    assert facts.patient_class == "E"
    assert facts.patient == "P1^^^JHYY"  # the first identifier: what order is kept by
    assert facts.resources == ("Patient/p1", "Encounter/e1")


@pytest.mark.parametrize(
    ("wanted", "goes"),
    [
        (Filter(), True),
        (Filter(message_types=("ADT",)), True),
        (Filter(message_types=("ADT^A08",)), True),
        (Filter(message_types=("ADT^A01", "ORU")), False),
        (Filter(senders=("HIS",)), True),
        (Filter(senders=("HIS^JHYY",)), True),
        (Filter(senders=("HIS^OTHER", "LIS")), False),
        (Filter(departments=("CAR",)), True),
        (Filter(departments=("ER",)), False),
        (Filter(patient_classes=("E", "O")), True),
        (Filter(patient_classes=("I",)), False),
        (Filter(message_types=("ADT",), patient_classes=("I",)), False),  # every one must hold
    ],
)
def test_filters(wanted: Filter, goes: bool) -> None:
    assert header_match(wanted, facts_of("a-1", A08, "utf-8", [])) is goes


def test_a_map_rewrites_only_the_named_component() -> None:
    mapped = transformed(Transform(map={"PV1-2": {"E": "O"}, "PV1-3.1": {"ICU": "重症"}}), A08, "x")
    segments = mapped.split("\r")
    assert segments[2].startswith("PV1|1|O|重症^01^02|")
    assert segments[:2] == A08.split("\r")[:2]  # the rest as it was
    unmapped = transformed(Transform(map={"MSH-3": {"LIS": "X"}}), A08, "x")
    assert unmapped == A08  # nothing to rewrite: the text as it was


def test_a_site_function_transforms_and_a_wrong_name_is_refused() -> None:
    upper = Transform(callable="tests.unit.test_destination_selection:shout")
    assert transformed(upper, "MSH|x", "lis") == "MSH|X lis"
    with pytest.raises(ValueError, match="no such function"):
        function("tests.unit.test_destination_selection:nothing")
    with pytest.raises(ValueError, match="not a field like"):
        transformed(Transform(map={"PV1": {"a": "b"}}), A08, "x")


def shout(text: str, destination: str) -> str:
    return f"{text.upper()} {destination}"
