"""Decoding a frame to text before any field is split: GBK/GB18030 trail bytes include ``|``,
``^``, ``~`` and ``\\``, so byte-level splitting breaks Chinese text. The listener's configured
character set comes first; MSH-18 is trusted only when the listener says so (Chinese devices
write ``UNICODE`` when they mean UTF-8, or nothing at all), and a fallback decoder catches the
GB18030 sender on a UTF-8 interface."""

from dataclasses import dataclass

from hub.hl7v2.settings import ListenerSettings

# table 0211 -> Python codec
MSH18 = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "latin-1",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "GB 18030-2000": "gb18030",
    "ISO IR58": "gb2312",
    "BIG-5": "big5",
}


@dataclass(frozen=True)
class Decoded:
    text: str
    charset: str
    lossy: bool = False  # no character set fitted: undecodable bytes were replaced


def msh18(raw: bytes) -> str:
    """MSH-18 as written, read from the first segment without decoding the rest."""
    first = raw.lstrip(b"\x0b").split(b"\r", 1)[0]
    if not first.startswith(b"MSH") or len(first) < 4:
        return ""
    fields = first.decode("latin-1").split(first[3:4].decode("latin-1"))
    return fields[17].split("~")[0].strip() if len(fields) > 17 else ""


def decode(raw: bytes, settings: ListenerSettings) -> Decoded:
    candidates = []
    if settings.trust_msh18 and (named := MSH18.get(msh18(raw).upper())):
        candidates.append(named)
    candidates += [settings.charset, settings.fallback_charset]
    for charset in dict.fromkeys(candidates):
        try:
            return Decoded(raw.decode(charset), charset)
        except (UnicodeDecodeError, LookupError):
            continue
    return Decoded(raw.decode(settings.charset, errors="replace"), settings.charset, lossy=True)
