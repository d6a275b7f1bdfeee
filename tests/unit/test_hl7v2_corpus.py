"""The tokenizer against two independent parsers on the whole corpus (``tests/data/hl7``):
hl7apy for the structure (segments, fields, repetitions, components, subcomponents) and
python-hl7 for escape sequences. They must agree on every field of every message."""

import json
from pathlib import Path
from typing import Any

import hl7
import pytest
from hl7apy.parser import parse_message

from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))


def text_of(entry: dict[str, Any]) -> str:
    return str((CORPUS / entry["file"]).read_bytes().decode(entry["charset"]))


def test_the_corpus_is_large_and_varied() -> None:
    assert len(MANIFEST) >= 40
    assert {e["charset"] for e in MANIFEST} == {"utf-8", "gb18030"}
    assert len({e["sender"] for e in MANIFEST}) >= 5
    assert any(segment.startswith("Z") for e in MANIFEST for segment in _names(text_of(e)))


def _names(text: str) -> list[str]:
    return [segment[:3] for segment in text.split("\r") if segment]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_structure_agrees_with_hl7apy(entry: dict[str, Any]) -> None:
    text = text_of(entry)
    ours = Message(text, entry["charset"])
    theirs = parse_message(text, find_groups=False, validation_level=2)
    assert [s.name for s in ours] == [s.name for s in theirs.children]
    compared = 0
    for segment, other in zip(ours, theirs.children, strict=True):
        repetitions: dict[int, list[Any]] = {}
        unnamed = False
        for field in other.children:
            if not field.name:  # past the version's definition (OBX-18 in 2.3.1): no position
                unnamed = True
                continue
            repetitions.setdefault(int(field.name.rsplit("_", 1)[1]), []).append(field)
        last_named = max(repetitions, default=0)
        for number in range(1, max([segment.field_count, *repetitions]) + 1):
            if unnamed and number > last_named:
                continue
            found = repetitions.get(number, [])
            expected = [_plain(f.to_er7(), ours) for f in found]
            assert [_plain(r, ours) for r in segment.repetitions(number)] == expected, (
                segment.name,
                number,
            )
            if segment.name == "MSH" and number <= 2:
                continue
            for raw, field in zip(segment.repetitions(number), found, strict=True):
                compared += _compare_components(raw, field, ours)
    assert compared > 0


def _plain(er7: str, ours: Message) -> str:
    """hl7apy writes the escape character of an escape it does not interpret as ``\\E\\``
    (``\\.br\\`` comes back as ``\\E\\.br\\E\\``): the same text, spelled differently."""
    escape = ours.delimiters.escape
    return er7.replace(f"{escape}E{escape}", escape)


def _compare_components(raw: str, field: Any, ours: Message) -> int:
    d = ours.delimiters
    parts = raw.split(d.component)
    compared = 0
    for component in field.children:
        if not component.name or component.name.count("_") != 1:
            continue
        index = int(component.name.rsplit("_", 1)[1])
        assert _plain(parts[index - 1], ours) == _plain(component.to_er7(), ours)
        compared += 1
        subs = parts[index - 1].split(d.subcomponent)
        for sub in getattr(component, "children", []):
            if sub.name and sub.name.count("_") == 1 and sub.name.rsplit("_", 1)[1].isdigit():
                position = int(sub.name.rsplit("_", 1)[1])
                if position <= len(subs) and len(subs) > 1:
                    assert _plain(subs[position - 1], ours) == _plain(sub.to_er7(), ours)
    return compared


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_escapes_agree_with_python_hl7(entry: dict[str, Any]) -> None:
    text = text_of(entry)
    ours = Message(text, entry["charset"])
    theirs = hl7.parse(text)
    for segment in ours:
        for number in range(3, segment.field_count + 1):
            for raw in segment.repetitions(number):
                for component in raw.split(ours.delimiters.component):
                    if ours.delimiters.escape not in component:
                        continue
                    if any(mark in component for mark in ("\\X", "\\H\\", "\\N\\", ".br")):
                        # python-hl7 leaves hex and highlighting as they are and turns \.br\
                        # into a CR; a FHIR string wants a newline: tested on their own below
                        continue
                    assert ours.delimiters.unescape(component) == theirs.unescape(component)


def test_hex_and_line_break_escapes() -> None:
    message = Message(
        "MSH|^~\\&|LIS|H|HIS|H|20260101||ORU^R01|1|P|2.5\rNTE|1||a\\X0D0A\\b\\.br\\c\\H\\d\\N\\\r"
    )
    note = message.first("NTE")
    assert note is not None
    assert note.value(3) == "a\r\nb\nc\\H\\d\\N\\"


def test_manifest_facts_match_what_the_tokenizer_reads() -> None:
    for entry in MANIFEST:
        message = Message(text_of(entry), entry["charset"])
        code, event, _ = message.message_type
        assert f"{code}^{event}" == entry["type"], entry["file"]
        assert message.sender == (entry["sender"], entry["facility"])
        assert message.control_id == entry["control_id"]
        assert message.version == entry["version"]
        pid = message.first("PID")
        found = (
            [pid.value(3, 1, repetition=n + 1) for n in range(len(pid.repetitions(3)))]
            if pid
            else []
        )
        assert found == entry["patient_ids"][: len(found)], entry["file"]
        assert len(message["OBX"]) == entry["obx_count"], entry["file"]
