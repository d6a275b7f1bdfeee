"""ACK messages: original mode (AA, AE, AR) and enhanced mode (CA, CE, CR), with an ERR segment
(table 0357 code and the location of the problem) on every error or reject. The ACK swaps sender
and receiver, echoes MSH-10 in MSA-2, and keeps the inbound version and character set."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from hub.base.envelope import new_id
from hub.hl7v2.message import Delimiters, Message

CHINA = ZoneInfo("Asia/Shanghai")

# table 0357
ACCEPTED = "0"
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION_ID = "203"
DUPLICATE_KEY = "205"
APPLICATION_INTERNAL_ERROR = "207"
ERROR_TEXT = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    DUPLICATE_KEY: "Duplicate key identifier",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}


@dataclass(frozen=True)
class Problem:
    """Why a message is refused: a table 0357 code, where, and a text for people."""

    code: str
    text: str
    segment: str = ""
    sequence: int = 1
    field: int = 0


def enhanced_mode(message: Message) -> bool:
    """MSH-15 or MSH-16 valued: enhanced acknowledgement mode."""
    return bool(message.msh.value(15) or message.msh.value(16))


def timestamp(now: datetime | None = None) -> str:
    moment = (now or datetime.now(CHINA)).astimezone(CHINA)
    return moment.strftime("%Y%m%d%H%M%S.") + f"{moment.microsecond // 1000:03d}+0800"


def build_ack(message: Message | None, code: str, problem: Problem | None = None) -> str:
    """The ACK text (segments joined by CR). ``message`` is None when nothing could be read;
    the ACK then uses the standard delimiters and an empty MSA-2."""
    d = message.delimiters if message is not None else Delimiters()
    f, c = d.field, d.component
    if message is not None:
        msh = message.msh
        receiver = [msh.raw_field(5), msh.raw_field(6)]
        sender = [msh.raw_field(3), msh.raw_field(4)]
        event = msh.value(9, 2)
        control = msh.raw_field(10)
        processing, version, charset = msh.raw_field(11), msh.raw_field(12), msh.raw_field(18)
    else:
        receiver, sender, event, control = ["JIANHU", ""], ["", ""], "", ""
        processing, version, charset = "P", "2.5", ""
    encoding = f"{d.component}{d.repetition}{d.escape}{d.subcomponent}"
    header = [
        "MSH",
        encoding,
        *receiver,
        *sender,
        timestamp(),
        "",
        f"ACK{c}{event}{c}ACK" if event else "ACK",
        new_id().replace("-", "")[:20],
        processing,
        version,
    ]
    if charset:
        header += ["", "", "", "", "", charset]
    text = problem.text if problem else ""
    segments = [f.join(header), f.join(["MSA", code, control, d.escape_text(text)[:80]])]
    if problem is not None and problem.code != ACCEPTED:
        segments.append(_err(problem, d, version))
    return "\r".join(segments) + "\r"


def ack_outcome(ack: str) -> tuple[str, str]:
    """MSA-1 of an ACK and what it says was wrong (MSA-3); ("", "") when it has no MSA."""
    if len(ack) < 4:
        return "", ""
    separator = ack[3]
    for segment in ack.replace("\n", "\r").split("\r"):
        fields = segment.split(separator)
        if fields[0] == "MSA":
            return (fields[1] if len(fields) > 1 else ""), (fields[3] if len(fields) > 3 else "")
    return "", ""


def _err(problem: Problem, d: Delimiters, version: str) -> str:
    f, c = d.field, d.component
    label = ERROR_TEXT.get(problem.code, "Error")
    cwe = c.join([problem.code, label, "HL70357"])
    where = c.join(
        [problem.segment, str(problem.sequence), str(problem.field) if problem.field else ""]
    )
    severity = "E"
    diagnostic = d.escape_text(problem.text)
    if version and _version_tuple(version) < (2, 5):  # ERR-1 (ELD) only before 2.5
        eld = c.join(
            [
                problem.segment,
                str(problem.sequence),
                str(problem.field or ""),
                cwe.replace(c, d.subcomponent),
            ]
        )
        return f.join(["ERR", eld])
    return f.join(
        # ERR-2 location, ERR-3 code, ERR-4 severity, ERR-7 diagnostic information
        ["ERR", "", where if problem.segment else "", cwe, severity, "", "", diagnostic]
    )


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)
