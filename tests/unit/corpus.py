"""The HL7 v2 corpus (``tests/data/hl7``, described by its manifest) as the mapping tests read
it: a message by its number, what it maps to, the resources of one type."""

import json
from pathlib import Path
from typing import Any

from hub.hl7v2.mapping import Mapped, normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
Resource = dict[str, Any]


def mapped(prefix: str) -> Mapped:
    """What the corpus message whose file name starts with ``prefix`` (``"54-"``) maps to."""
    entries = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
    entry = next(e for e in entries if e["file"].startswith(prefix))
    text = (CORPUS / entry["file"]).read_bytes().decode(entry["charset"])
    return normalize(Message(text, entry["charset"]))


def corpus(prefix: str) -> list[Resource]:
    return mapped(prefix).resources


def of(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["resourceType"] == kind]


def one(resources: list[Resource], kind: str) -> Resource:
    (found,) = of(resources, kind)
    return found
