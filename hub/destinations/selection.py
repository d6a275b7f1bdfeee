"""Which destinations a message goes to, and in what form: the facts a filter asks about, read
once from the message's header segments (the type, the sender, the visit's department and
patient class, the patient) and from what it produced in the store; a filter's FHIR search run
over the resources it produced only; the transform of a destination applied to the text."""

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qsl

from hub.destinations.config import Destination, Filter, Transform
from hub.hl7v2.message import Message, head
from store.query import parse_search
from store.resources import ResourceStore

TextTransform = Callable[[str, str], str]


@dataclass(frozen=True)
class Facts:
    archive_id: str
    message_type: str  # ADT^A01
    sender: tuple[str, str]  # MSH-3, MSH-4
    receiver: str  # MSH-5
    departments: frozenset[str]  # PV1-3.1, PV1-10
    patient_class: str  # PV1-2
    patient: str  # PID-3 (first): id^^^authority, the key deliveries keep their order by
    resources: tuple[str, ...]  # Type/id of what the message wrote


def facts_of(archive_id: str, text: str, charset: str, resources: Sequence[str]) -> Facts:
    message = Message(head(text), charset)  # every fact is before the first OBX
    code, event, _ = message.message_type
    pv1, pid = message.first("PV1"), message.first("PID")
    departments = {pv1.value(3, 1), pv1.value(10)} - {""} if pv1 is not None else set()
    patient = ""
    if pid is not None and pid.value(3, 1):
        patient = f"{pid.value(3, 1)}^^^{pid.value(3, 4)}"
    return Facts(
        archive_id,
        f"{code}^{event}",
        message.sender,
        message.receiver[0],
        frozenset(departments),
        pv1.value(2) if pv1 is not None else "",
        patient,
        tuple(resources),
    )


def header_match(wanted: Filter, facts: Facts) -> bool:
    """The conditions that need no look-up (all but ``fhir``)."""
    code = facts.message_type.split("^")[0]
    application, facility = facts.sender
    return (
        (not wanted.message_types or bool({code, facts.message_type} & set(wanted.message_types)))
        and (
            not wanted.senders
            or bool({application, f"{application}^{facility}"} & set(wanted.senders))
        )
        and (not wanted.receivers or facts.receiver in wanted.receivers)
        and (not wanted.departments or bool(facts.departments & set(wanted.departments)))
        and (not wanted.patient_classes or facts.patient_class in wanted.patient_classes)
    )


async def fhir_match(resources: ResourceStore, expression: str, facts: Facts) -> bool:
    """Whether one of the message's resources of the expression's type satisfies it."""
    type_, _, query = expression.partition("?")
    ids = [path.split("/", 1)[1] for path in facts.resources if path.split("/", 1)[0] == type_]
    if not ids:
        return False
    pairs = [*parse_qsl(query, keep_blank_values=True), ("_id", ",".join(ids))]
    search = parse_search(type_, pairs)
    page = await resources.search(search, count=1)
    return bool(page.items)


async def selected(
    destinations: Sequence[Destination], resources: ResourceStore, facts: Facts
) -> list[Destination]:
    chosen = []
    for destination in destinations:
        wanted = destination.filter
        if not header_match(wanted, facts):
            continue
        if wanted.fhir and not await fhir_match(resources, wanted.fhir, facts):
            continue
        chosen.append(destination)
    return chosen


def transformed(transform: Transform, text: str, destination: str) -> str:
    """The text as the destination takes it: mapped values, then the site's function."""
    if transform.map:
        text = _mapped(text, transform.map)
    if transform.callable:
        text = function(transform.callable)(text, destination)
    return text


@cache
def function(path: str) -> TextTransform:
    """``package.module:function``, imported once; a wrong name fails where it is configured."""
    module, _, name = path.partition(":")
    found = getattr(importlib.import_module(module), name, None)
    if not callable(found):
        raise ValueError(f"{path}: no such function")
    return found  # type: ignore[no-any-return]


def _mapped(text: str, tables: dict[str, dict[str, str]]) -> str:
    """Rewrite component values (``PV1-3.1``) found in a table; other values as they are."""
    rules = [_rule(field, table) for field, table in tables.items()]
    separator = text[3] if text.startswith("MSH") and len(text) > 4 else "|"
    component = text[4] if len(text) > 4 else "^"
    out = []
    for segment in text.replace("\n", "\r").split("\r"):
        fields = segment.split(separator)
        for name, number, position, table in rules:
            # MSH-1 is the separator itself: MSH-n is fields[n - 1]
            index = number - 1 if name == "MSH" else number
            if fields[0] != name or index >= len(fields):
                continue
            parts = fields[index].split(component)
            if position <= len(parts) and parts[position - 1] in table:
                parts[position - 1] = table[parts[position - 1]]
                fields[index] = component.join(parts)
        out.append(separator.join(fields))
    return "\r".join(out)


def _rule(field: str, table: dict[str, str]) -> tuple[str, int, int, dict[str, str]]:
    """``PV1-3.1`` -> ("PV1", 3, 1, table)."""
    segment, _, rest = field.partition("-")
    number, _, position = rest.partition(".")
    if len(segment) != 3 or not number.isdigit() or (position and not position.isdigit()):
        raise ValueError(f"{field!r} is not a field like PV1-3.1")
    return segment, int(number), int(position or 1), table
