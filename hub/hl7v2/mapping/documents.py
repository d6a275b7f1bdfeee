"""MDM^T02 clinical documents (出院小结, 知情同意书, ...): the Patient, the Encounter from PV1, one
DocumentReference from TXA and a Binary per document body from the OBX segments.

The unique document number (TXA-12, with the sender) is the key, so a resent document updates
the same DocumentReference and Binary. The body is kept byte for byte in the Binary: text lines
(TX, FT, ST) joined as UTF-8 text, an encapsulated file (ED, a PDF for example) decoded from its
transfer encoding. The DocumentReference describes it by url, MIME type, size and SHA-1 hash, so
a reader can check what it fetched. Authors stay display names with their staff numbers: the
message carries no more than that about them."""

import base64
import binascii
import hashlib
import re

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import codeable, coding_system, date_time, table
from hub.hl7v2.mapping.common import (
    Mapped,
    instant,
    patient,
    reference,
    sender_of,
    stable_id,
    staff,
)
from hub.hl7v2.mapping.visits import encounter
from hub.hl7v2.message import Message, Segment

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
TEXT_TYPES = ("TX", "FT", "ST")
TEXT_PLAIN = "text/plain; charset=utf-8"


def documents(message: Message, mapped: Mapped) -> None:
    txa = message.first("TXA")
    if txa is None:
        raise MappingError("the MDM message has no TXA segment")
    sender = sender_of(message)
    subject = patient(message, mapped)
    visit = encounter(message, mapped, subject)
    observations = message["OBX"]
    document = _document_reference(txa, observations, subject, visit, sender)
    files = [obx for obx in observations if obx.value(2) == "ED"]
    text = _text_lines(observations, message.charset)
    if files:
        # A file is the document itself; text beside it (a summary line) describes it.
        bodies = [_encapsulated(obx, sender) for obx in files]
        if text:
            document["description"] = text
    elif text:
        bodies = [(text.encode("utf-8"), TEXT_PLAIN)]
    else:
        raise MappingError("MDM^T02 carries no document content (no TX, FT, ST or ED OBX)")
    title = _title(txa, observations[0], bool(files))
    creation = date_time(txa.value(6))
    for position, (data, content_type) in enumerate(bodies, start=1):
        binary = mapped.add(_binary(document, position, data, content_type))
        document["content"].append(
            {"attachment": _attachment(binary, data, content_type, title, creation)}
        )
    mapped.add(document)


def _document_reference(
    txa: Segment, observations: list[Segment], subject: Json, visit: Json | None, sender: str
) -> Json:
    number, namespace = txa.value(12, 1), txa.value(12, 2)
    if not number:
        raise MappingError("TXA-12 unique document number is missing")
    authority = namespace or sender
    document: Json = {
        "resourceType": "DocumentReference",
        "id": stable_id("doc", sender, authority, number),
        # TXA-12 names this version of the document (an edit gets a new number with TXA-13
        # pointing back), which is what masterIdentifier means; the `identifier` search
        # parameter covers masterIdentifier too.
        "masterIdentifier": {
            "system": f"urn:jianhu:sid:document:{authority.lower()}",
            "value": number,
        },
        "status": table("document_availability_status", sender).get(txa.value(19), "current"),
        "subject": reference(subject),
        "content": [],
    }
    if doc_status := table("document_completion_status", sender).get(txa.value(17)):
        document["docStatus"] = doc_status
    document.update(_document_kind(txa, observations, sender))
    if date := date_time(txa.value(6)) or date_time(txa.value(4)):
        document["date"] = instant(date)
    authors = _people(txa, (9, 5), sender)
    if authors:
        document["author"] = authors
    if authenticator := _authenticator(txa, sender):
        document["authenticator"] = authenticator
    if label := table("document_confidentiality", sender).get(txa.value(18)):
        document["securityLabel"] = [{"coding": [{"system": CONFIDENTIALITY, "code": label}]}]
    context: Json = {}
    if visit is not None:
        context["encounter"] = [reference(visit)]
    if activity := date_time(txa.value(4)):
        context["period"] = {"start": activity}
    if context:
        document["context"] = context
    return document


def _document_kind(txa: Segment, observations: list[Segment], sender: str) -> Json:
    """type from OBX-3 (these senders code the document there in LOINC: 18842-5 出院小结) and
    category from TXA-2. Table 0270 is user-defined and senders stretch it (the EMR sends CN,
    "consultation", for 知情同意书), so TXA-2 stays in the sender's own code system unless
    ``coding_system`` maps HL70270 for that sender."""
    found: Json = {}
    kind = codeable(observations[0].components(3), sender) if observations else None
    if kind and kind.get("coding"):
        found["type"] = kind
    if code := txa.value(2):
        document_class = {"coding": [{"system": coding_system("HL70270", sender), "code": code}]}
        found["category"] = [document_class]
        found.setdefault("type", document_class)
    return found


def _text_lines(observations: list[Segment], charset: str) -> str:
    """Every text OBX in order, each repetition of OBX-5 on its own line (\\X..\\ escapes are
    bytes in the message's charset)."""
    lines: list[str] = []
    for obx in observations:
        kind = obx.value(2)
        if kind == "ED":
            continue
        if kind not in TEXT_TYPES:
            raise MappingError(f"OBX-2 {kind!r} cannot be document content (TX, FT, ST or ED)")
        lines.extend(
            obx.value(5, repetition=n, charset=charset)
            for n in range(1, len(obx.repetitions(5)) + 1)
        )
    return "\n".join(lines)


_MIME_TOKEN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*$")


def _encapsulated(obx: Segment, sender: str) -> tuple[bytes, str]:
    """ED: (source application, type of data, data subtype, encoding, data) -> bytes, MIME."""
    _, kind, subtype, encoding, data = (obx.value(5, n) for n in range(1, 6))
    if not data:
        raise MappingError("an ED OBX-5 has no data (ED.5)")
    top = table("ed_type_of_data", sender).get(kind.upper(), kind.lower())
    content_type = f"{top}/{subtype.lower()}" if top and subtype else "application/octet-stream"
    if not all(_MIME_TOKEN.match(part) for part in content_type.split("/")):
        raise MappingError(f"ED.2/ED.3 {kind!r}/{subtype!r} do not form a MIME type")
    return _decode(data, encoding), content_type


def _decode(data: str, encoding: str) -> bytes:
    """ED.4 (table 0299). Base64 is decoded strictly, so a damaged transfer fails here instead of
    storing garbage as a PDF; line breaks inside the text are allowed, as in MIME."""
    kind = encoding.upper()
    if kind == "BASE64":
        try:
            return base64.b64decode(re.sub(r"\s+", "", data), validate=True)
        except binascii.Error as exc:
            raise MappingError(f"ED.5 is not valid base64: {exc}") from exc
    if kind == "HEX":
        try:
            return bytes.fromhex(data)
        except ValueError as exc:
            raise MappingError(f"ED.5 is not valid hex: {exc}") from exc
    if kind in ("A", ""):
        return data.encode("utf-8")
    raise MappingError(f"ED.4 encoding {encoding!r} is not Base64, Hex or A")


def _title(txa: Segment, first: Segment, is_file: bool) -> str:
    """A file keeps its file name (TXA-16); text takes the document name from OBX-3."""
    if is_file and txa.value(16):
        return txa.value(16)
    concept = codeable(first.components(3), "")
    if concept and concept.get("text"):
        return str(concept["text"])
    return txa.value(16)


def _binary(document: Json, position: int, data: bytes, content_type: str) -> Json:
    return {
        "resourceType": "Binary",
        "id": stable_id("bin", document["id"], str(position)),
        "contentType": content_type,
        # Whoever may read the DocumentReference may read its body, and no one else.
        "securityContext": reference(document),
        "data": base64.b64encode(data).decode("ascii"),
    }


def _attachment(
    binary: Json, data: bytes, content_type: str, title: str, creation: str | None
) -> Json:
    attachment: Json = {
        "contentType": content_type,
        "url": f"Binary/{binary['id']}",
        "size": len(data),
        # R4 Attachment.hash: the base64 of the SHA-1 of the data.
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
    }
    if title:
        attachment["title"] = title
    if creation:
        attachment["creation"] = creation
    return attachment


def _people(txa: Segment, fields: tuple[int, ...], sender: str) -> list[Json]:
    """XCN repetitions of the given fields, each person once (TXA-9 and TXA-5 often agree)."""
    found: list[Json] = []
    for number in fields:
        for rep in range(1, len(txa.repetitions(number)) + 1):
            person = staff(txa.components(number, rep))
            if person is not None and person not in found:
                found.append(person)
    return found


def _authenticator(txa: Segment, sender: str) -> Json | None:
    """TXA-10, or the person of TXA-22 (authentication person, time stamp). Some senders put
    TXA-22 as subcomponents of one component, so both layouts are read."""
    people = _people(txa, (10,), sender)
    if people:
        return people[0]
    parts = txa.components(22)
    if len(parts) <= 1:
        parts = [txa.value(22, 1, n) for n in range(1, 4)]
    return staff(parts)
