"""The cheap check at intake of what each mapping needs: a message it would refuse is named
with the segment (or field) it lacks, and one it would take passes."""

from pathlib import Path

import pytest

from hub.hl7v2.mapping.required import missing
from hub.hl7v2.message import Message

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
MSH = "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20260305101244||{type}|C1|P|2.5"
PID = "PID|1||F0001^^^JHYY^PI||张^三||19850930|M"


def message(kind: str, *segments: str) -> Message:
    return Message("\r".join([MSH.format(type=kind), *segments]))


def test_a_complete_result_passes() -> None:
    text = (EXAMPLES / "oru-r01-cbc.hl7").read_text(encoding="utf-8").replace("\n", "\r")
    assert missing(Message(text)) is None


@pytest.mark.parametrize(
    ("kind", "segments", "segment", "field"),
    [
        ("ORU^R01^ORU_R01", ["OBR|1|A1"], "PID", 0),
        ("ORU^R01^ORU_R01", [PID], "OBR", 0),
        ("DFT^P03^DFT_P03", [PID, "PV1|1|I"], "FT1", 0),
        ("ADT^A40^ADT_A39", [PID], "MRG", 0),
        ("ORM^O01^ORM_O01", [PID], "ORC", 0),
        ("ADT^A01^ADT_A01", ["PID|1||"], "PID", 3),
    ],
)
def test_what_the_mapping_needs_is_named(
    kind: str, segments: list[str], segment: str, field: int
) -> None:
    found = missing(message(kind, *segments))
    assert found is not None
    assert (found.segment, found.field) == (segment, field)


def test_every_patient_group_needs_its_identifier() -> None:
    found = missing(message("ORU^R01^ORU_R01", PID, "OBR|1|A1", "PID|2||", "OBR|1|A2"))
    assert found is not None
    assert (found.segment, found.sequence, found.field) == ("PID", 2, 3)


def test_a_type_without_a_mapping_is_not_checked() -> None:
    assert missing(message("SSU^U03^SSU_U03", "SAC|||2603050301^HIS")) is None


def test_only_a_result_batch_needs_every_patient_group_identified() -> None:
    """Other mappings read the first PID only: a second, empty one does not refuse them."""
    scheduling = message("SIU^S12^SIU_S12", "SCH|A1|A1||||||||||^^^20260305100000", PID, "PID|2||")
    assert missing(scheduling) is None


def test_a_master_file_needs_its_records() -> None:
    header = "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20261203||MFN^M02^MFN_M02|X1|P|2.5\rMFI|PRA\r"
    lacking = missing(Message(header))
    assert lacking is not None
    assert lacking.text == "the MFN^M02 message has no MFE segment"
    with_record = header + "MFE|MAD|20261203||1402^王建国|CWE\r"
    assert missing(Message(with_record + "STF|1402^王建国\r")) is None
    lacking = missing(Message(with_record))
    assert lacking is not None
    assert lacking.segment == "STF"


def test_a_strict_sender_s_unknown_code_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender configured as strict (``strict_senders``) gets AE for a code its tables do not
    know; any other sender's such code is kept as sent."""
    text = (
        "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20261203||ORU^R01^ORU_R01|S1|P|2.5\r"
        "PID|1||P1^^^JHYY^PI||王^芳||19900101|Q\r"
        "OBR|1|O1^HIS|F1^LIS|2345-7^血糖^LN\r"
        "OBX|1|NM|2345-7^血糖^LN||5.6|mmol/L|||||Z\r"
    )
    assert missing(Message(text)) is None  # not strict: kept as sent
    monkeypatch.setattr("hub.hl7v2.mapping.required.strict_senders", lambda: frozenset({"LIS"}))
    lacking = missing(Message(text))
    assert lacking is not None
    assert (lacking.segment, lacking.field, lacking.unknown_code) == ("PID", 8, True)
    assert lacking.text == "PID-8 'Q' is not in LIS's sex table"
    lacking = missing(Message(text.replace("19900101|Q", "19900101|F")))
    assert lacking is not None
    assert (lacking.segment, lacking.field) == ("OBX", 11)
    assert missing(Message(text.replace("|Q\r", "|F\r").replace("||Z\r", "||F\r"))) is None
