"""The HL7 v2 tokenizer, MLLP framing and ACK building."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.hl7v2.ack import Problem, build_ack
from hub.hl7v2.message import Delimiters, HL7ParseError, Message
from hub.hl7v2.mllp import FrameReader, frame

ORU = (
    "MSH|^~\\&|LIS|SXH|HIS|SXH|20261126083000+0800||ORU^R01^ORU_R01|L0001|P|2.5\r"
    "PID|1||330602199001011231^^^^ID~JZK0001^^^^PI||张^三||19900101|M\r"
    "OBX|1|NM|718-7^血红蛋白^LN||132|g/L|115-150|N|||F\r"
    "OBX|2|FT|NOTE^备注^L||第一行\\.br\\第二行 \\F\\ 与 \\S\\ \\T\\ \\R\\ \\E\\ \\X41\\|||||F\r"
    "ZLS|1|检验科\r"
)


def test_fields_components_repetitions_and_escapes() -> None:
    message = Message(ORU)
    assert message.message_type == ("ORU", "R01", "ORU_R01")
    assert (message.control_id, message.sender, message.version) == ("L0001", ("LIS", "SXH"), "2.5")
    assert message.msh.value(1) == "|"
    assert message.msh.value(2) == "^~\\&"
    pid = message.first("PID")
    assert pid is not None
    assert pid.repetitions(3) == ["330602199001011231^^^^ID", "JZK0001^^^^PI"]
    assert pid.value(3, 5, repetition=2) == "PI"
    assert pid.components(5) == ["张", "三"]
    note = message["OBX"][1].value(5)
    assert note == "第一行\n第二行 | 与 ^ & ~ \\ A"
    assert [s.name for s in message] == ["MSH", "PID", "OBX", "OBX", "ZLS"]
    assert message.first("ZLS") is not None
    assert "张" not in repr(message) + repr(pid)  # no patient data in reprs


def test_other_delimiters_and_line_endings() -> None:
    text = "MSH#$*@%#A#B#C#D#20260101##ADT$A01#X1#P#2.3.1\nPID#1##123$$$$MR*456##李$四\n"
    message = Message(text)
    pid = message.first("PID")
    assert pid is not None
    assert pid.value(3, 5) == "MR"
    assert pid.value(3, 1, repetition=2) == "456"
    assert pid.components(5) == ["李", "四"]


@pytest.mark.parametrize(
    "text",
    ["", "PID|1", "MSH", "MSH|||||", "MSH|^^^^|A", "MSH|^~\\&|A\rpid|1\r"],
)
def test_what_is_not_a_message_is_refused_clearly(text: str) -> None:
    with pytest.raises(HL7ParseError):
        Message(text)


@given(st.text(max_size=300))
@settings(max_examples=500, deadline=None)
def test_the_tokenizer_never_fails_otherwise(text: str) -> None:
    try:
        message = Message(text)
    except HL7ParseError:
        return
    for segment in message:
        for number in range(1, 30):
            segment.value(number, 2, 2)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60))
def test_escaping_round_trips(text: str) -> None:
    delimiters = Delimiters()
    escaped = delimiters.escape_text(text)
    assert not set("|^~&\r") & set(escaped)
    assert delimiters.unescape(escaped) == text.replace("\r", "\r")


def read_all(chunks: list[bytes], limit: int = 1000) -> list[tuple[bytes, bool]]:
    async def run() -> list[tuple[bytes, bool]]:
        reader = asyncio.StreamReader()
        for chunk in chunks:
            reader.feed_data(chunk)
        reader.feed_eof()
        frames, found = FrameReader(reader, limit), []
        while (item := await frames.next()) is not None:
            found.append((item.payload, item.oversized))
        return found

    return asyncio.run(run())


def test_frames_survive_noise_and_splits() -> None:
    stream = b"\r\n junk" + frame(b"MSH|one") + b"\x00\r" + frame(b"MSH|two") + frame(b"MSH|3")
    whole = read_all([stream])
    assert whole == [(b"MSH|one", False), (b"MSH|two", False), (b"MSH|3", False)]
    byte_by_byte = read_all([stream[i : i + 1] for i in range(len(stream))])
    assert byte_by_byte == whole


def test_oversized_frames_are_reported_and_skipped() -> None:
    big = frame(b"MSH|" + b"x" * 5000) + frame(b"MSH|next")
    found = read_all([big], limit=1024)
    assert found[0][1] is True
    assert found[0][0].startswith(b"MSH|")
    assert found[1] == (b"MSH|next", False)


def test_ack_swaps_sender_and_echoes_the_control_id() -> None:
    message = Message(ORU.replace("|2.5\r", "|2.5||||||UNICODE UTF-8\r", 1))
    ack = Message(build_ack(message, "AA"))
    assert ack.sender == ("HIS", "SXH")
    assert ack.receiver == ("LIS", "SXH")
    assert ack.message_type[:2] == ("ACK", "R01")
    msa = ack.first("MSA")
    assert msa is not None
    assert (msa.value(1), msa.value(2)) == ("AA", "L0001")
    assert (ack.version, ack.msh.value(18)) == ("2.5", "UNICODE UTF-8")


def test_errors_carry_an_err_segment_with_table_0357() -> None:
    problem = Problem("101", "PID-3 | is required", "PID", 1, 3)
    ack = Message(build_ack(Message(ORU), "AE", problem))
    err = ack.first("ERR")
    assert err is not None
    assert err.value(2, 1) == "PID"
    assert err.value(2, 3) == "3"
    assert (err.value(3, 1), err.value(3, 3)) == ("101", "HL70357")
    assert err.value(7) == "PID-3 | is required"
    old = Message(build_ack(Message(ORU.replace("|2.5\r", "|2.3.1\r", 1)), "AE", problem))
    old_err = old.first("ERR")
    assert old_err is not None
    assert old_err.value(1, 4).startswith("101")
    unreadable = Message(build_ack(None, "AE", Problem("100", "no MSH")))
    msa = unreadable.first("MSA")
    assert msa is not None
    assert (msa.value(1), msa.value(2)) == ("AE", "")
