"""A fast HL7 v2 tokenizer for the ingest path (hl7apy costs about 30 ms per ORU^R01 here).

A message is split into segments and fields once; components, repetitions and subcomponents
are split only when asked for, and escape sequences are decoded only on the leaf values read.
Delimiters come from MSH-1 and MSH-2 of each message. Z-segments are kept like any other.
Field numbers follow the standard: ``msg["PID"][0].field(3)`` is PID-3, and for MSH, MSH-1 is
the field separator and MSH-2 the encoding characters.
"""

import asyncio
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from hub.base.errors import PermanentError


class HL7ParseError(PermanentError):
    """The text is not an HL7 v2 message (the listener answers AE with ERR)."""


@dataclass(frozen=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @cached_property
    def _escape_pattern(self) -> re.Pattern[str]:
        e = re.escape(self.escape)
        return re.compile(f"{e}([^{e}]*){e}")

    def unescape(self, text: str, charset: str = "utf-8") -> str:
        """Decode ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, ``\\Xhh..\\`` and ``\\.br\\``; other
        sequences (highlighting, unknown) are kept as they are."""
        if self.escape not in text:
            return text
        names = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
            ".br": "\n",
        }

        def decode(match: re.Match[str]) -> str:
            body = match[1]
            if body in names:
                return names[body]
            if body[:1] == "X" and len(body) > 1 and len(body) % 2 == 1:
                try:
                    return bytes.fromhex(body[1:]).decode(charset, errors="replace")
                except ValueError:
                    return match[0]
            return match[0]

        return self._escape_pattern.sub(decode, text)

    def escape_text(self, text: str) -> str:
        """The inverse, for values written into a message (ACK texts)."""
        e = self.escape
        out = text.replace(e, f"{e}E{e}")
        for char, name in (
            (self.field, "F"),
            (self.component, "S"),
            (self.subcomponent, "T"),
            (self.repetition, "R"),
        ):
            out = out.replace(char, f"{e}{name}{e}")
        return out.replace("\r", f"{e}X0D{e}").replace("\n", f"{e}.br{e}")


class Segment:
    __slots__ = ("_delims", "_fields", "name")

    def __init__(self, raw: str, delims: Delimiters) -> None:
        self._fields = raw.split(delims.field)
        self._delims = delims
        self.name = self._fields[0]

    def raw_field(self, number: int) -> str:
        """The field as it stands in the message (delimiters and escapes untouched)."""
        if self.name == "MSH":
            if number == 1:
                return self._delims.field
            index = number - 1
        else:
            index = number
        fields = self._fields
        return fields[index] if 0 < index < len(fields) else ""

    def fields_as_sent(self) -> list[str]:
        return list(self._fields)

    @property
    def field_count(self) -> int:
        return len(self._fields) if self.name == "MSH" else len(self._fields) - 1

    def repetitions(self, number: int) -> list[str]:
        raw = self.raw_field(number)
        if self.name == "MSH" and number in (1, 2):
            return [raw]
        return raw.split(self._delims.repetition) if raw else []

    def value(
        self,
        number: int,
        component: int = 1,
        subcomponent: int = 1,
        repetition: int = 1,
        charset: str = "utf-8",
    ) -> str:
        """One leaf, unescaped: ``value(3, 1)`` is PID-3.1 of the first repetition."""
        reps = self.repetitions(number)
        if len(reps) < repetition:
            return ""
        if self.name == "MSH" and number in (1, 2):
            return reps[0]
        return leaf(reps[repetition - 1], self._delims, component, subcomponent, charset)

    def components(self, number: int, repetition: int = 1) -> list[str]:
        reps = self.repetitions(number)
        if len(reps) < repetition:
            return []
        delims = self._delims
        return [delims.unescape(c) for c in reps[repetition - 1].split(delims.component)]

    def __repr__(self) -> str:  # no field values: they may be patient data
        return f"<Segment {self.name} with {self.field_count} fields>"


def leaf(raw: str, delims: Delimiters, component: int, subcomponent: int, charset: str) -> str:
    parts = raw.split(delims.component)
    if len(parts) < component:
        return ""
    subs = parts[component - 1].split(delims.subcomponent)
    if len(subs) < subcomponent:
        return ""
    return delims.unescape(subs[subcomponent - 1], charset)


_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


# A message this long (a result of tens of thousands of OBX) is parsed in a worker thread: its
# hundreds of milliseconds of splitting must not hold the event loop.
PARSE_OFF_LOOP_CHARS = 256 * 1024


def head(text: str) -> str:
    """The segments before the first result (OBX): the header, the patient, the order."""
    for separator in ("\rOBX|", "\nOBX|"):
        found = text.find(separator)
        if found >= 0:
            return text[:found]
    return text


def without_results(text: str) -> str:
    """The message without its OBX segments: what a reader of order and specimen statuses
    needs, a few segments even of a result message of 50,000 OBX."""
    if "OBX|" not in text:
        return text
    segments = text.replace("\n", "\r").split("\r")
    return "\r".join(s for s in segments if s and not s.startswith("OBX|"))


async def parse(text: str, charset: str = "utf-8") -> "Message":
    """``Message(text, charset)``, off the event loop when the text is long."""
    if len(text) > PARSE_OFF_LOOP_CHARS:
        return await asyncio.to_thread(Message, text, charset)
    return Message(text, charset)


class Message:
    """A parsed message: segments in order, delimiters from its MSH."""

    def __init__(self, text: str, charset: str = "utf-8") -> None:
        text = text.lstrip("\x0b").strip("\x1c\r\n ")
        if not text.startswith("MSH") or len(text) < 8:
            raise HL7ParseError("the message does not start with an MSH segment")
        separator = text[3]
        encoding = text[4:9].split(separator, 1)[0]
        if len(encoding) < 4 or separator.isalnum() or len(set(separator + encoding[:4])) != 5:
            raise HL7ParseError("MSH-1 and MSH-2 do not define five distinct delimiters")
        self.delimiters = Delimiters(separator, encoding[0], encoding[1], encoding[2], encoding[3])
        self.charset = charset
        self.segments = [
            Segment(raw, self.delimiters) for raw in _SEGMENT_SPLIT.split(text) if raw.strip()
        ]
        for segment in self.segments:
            if not _SEGMENT_NAME.match(segment.name):
                raise HL7ParseError(f"{segment.name[:10]!r} is not a segment name")
        self.msh = self.segments[0]

    def __getitem__(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]

    def content_hash(self) -> str:
        """SHA-256 of the segments as sent, but for MSH-7: a sender that resends a message
        often stamps it anew, and it is still the same message."""
        digest = hashlib.sha256()
        for segment in self.segments:
            fields = segment.fields_as_sent()
            if segment is self.msh and len(fields) > 6:
                fields = [*fields[:6], "", *fields[7:]]  # [6] is MSH-7: MSH-1 is the separator
            digest.update(self.delimiters.field.join(fields).encode())
            digest.update(b"\r")
        return digest.hexdigest()

    def first(self, name: str) -> Segment | None:
        return next((segment for segment in self.segments if segment.name == name), None)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    # --- the header fields every stage needs ---
    @property
    def message_type(self) -> tuple[str, str, str]:
        """(MSH-9.1, MSH-9.2, MSH-9.3): ``("ORU", "R01", "ORU_R01")``."""
        msh = self.msh
        code, event, structure = (msh.value(9, n) for n in (1, 2, 3))
        return code, event, structure or (f"{code}_{event}" if code and event else "")

    @property
    def control_id(self) -> str:
        return self.msh.value(10)

    @property
    def sender(self) -> tuple[str, str]:
        """(MSH-3 sending application, MSH-4 sending facility), first components."""
        return self.msh.value(3), self.msh.value(4)

    @property
    def receiver(self) -> tuple[str, str]:
        return self.msh.value(5), self.msh.value(6)

    @property
    def processing_id(self) -> str:
        return self.msh.value(11)

    @property
    def version(self) -> str:
        return self.msh.value(12)

    def __repr__(self) -> str:
        code, event, _ = self.message_type
        return f"<Message {code}^{event} with {len(self.segments)} segments>"
