"""The path of one message or request through the hub, by its correlation id
(``hub.base.correlation``): received and archived, normalized into which resource versions, the
events those versions were published as, and what the features and adapters did because of
them (lab alerts, ledger submissions with their answers).

The hub's own stages are read here; the rest come from *tracers* that the composition root
hands in, one per feature or adapter framework, so this module knows none of them. Nothing
shown carries message or resource content: references, codes, statuses and times.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from hub.base.correlation import system_of
from hub.base.errors import StoreError
from hub.base.hospital_time import shown
from hub.base.json import Json
from hub.hl7v2.ack import ack_outcome
from hub.hl7v2.replay import summary
from store.archive import ArchivedMessage, ArchiveQuery, MessageArchive
from store.resources import AuditFilter, ResourceStore, StoredVersion

# More versions than this from one message are shown as a count beyond it (a 50,000-OBX result).
MAX_VERSIONS = 1000
# A control id sent by several senders, or reused: at most this many messages are offered.
MAX_CANDIDATES = 20
MAX_REQUESTS = 200  # API calls listed for one id (a batch is one per entry)
AUDIT_TYPE = "urn:jianhu:codesystem:audit-event-type"


@dataclass(frozen=True)
class Traced:
    """What the hub's own stages found, for the tracers to follow further."""

    correlation: str
    versions: Sequence[StoredVersion]


# A tracer names its section ("alerts", "submissions") and lists what it found, oldest first,
# each item with a ``line`` for the terminal.
Tracer = tuple[str, Callable[[Traced], Awaitable[list[Json]]]]


@dataclass
class Trace:
    correlation: str
    message: Json | None = None  # the archived HL7 v2 message, when it was one
    requests: list[Json] = field(default_factory=list)  # the API calls made under the id
    versions: list[Json] = field(default_factory=list)
    more_versions: bool = False  # more than MAX_VERSIONS: the first ones are listed
    events: list[Json] = field(default_factory=list)
    sections: dict[str, list[Json]] = field(default_factory=dict)
    candidates: list[Json] = field(default_factory=list)  # the id was a control id of several

    @property
    def found(self) -> bool:
        seen = (self.message, self.requests, self.versions, self.candidates)
        return any(seen) or any(self.sections.values())

    def as_json(self) -> Json:
        return {
            "correlation_id": self.correlation,
            "message": self.message,
            "requests": self.requests,
            "versions": self.versions,
            "more_versions": self.more_versions,
            "events": self.events,
            **self.sections,
            **({"candidates": self.candidates} if self.candidates else {}),
        }


async def trace(
    id: str,
    archive: MessageArchive,
    resources: ResourceStore,
    tracers: Sequence[Tracer] = (),
) -> Trace:
    """The trace of a correlation id, an archive id (the same thing for an HL7 v2 message) or
    an MSH-10 control id that names one message."""
    message = await _archived(archive, id)
    if message is None:
        sent = await archive.search(ArchiveQuery(control_id=id, limit=MAX_CANDIDATES + 1))
        if len(sent) > 1:
            candidates = [summary(m) for m in sent[:MAX_CANDIDATES]]
            sections: dict[str, list[Json]] = {section: [] for section, _ in tracers}
            return Trace(id, sections=sections, candidates=candidates)
        message = sent[0] if sent else None
    correlation = message.id if message is not None else id
    versions = await resources.traced(correlation, MAX_VERSIONS + 1)
    found = Trace(
        correlation,
        message=_message(message) if message is not None else None,
        requests=await _requests(resources, correlation),
        versions=[_version(v) for v in versions[:MAX_VERSIONS]],
        more_versions=len(versions) > MAX_VERSIONS,
        events=_events(versions[:MAX_VERSIONS]),
    )
    traced = Traced(correlation, versions[:MAX_VERSIONS])
    for section, tracer in tracers:
        found.sections[section] = await tracer(traced)
    return found


async def _archived(archive: MessageArchive, id: str) -> ArchivedMessage | None:
    try:
        return await archive.get(id)
    except StoreError:
        return None


def _message(message: ArchivedMessage) -> Json:
    return summary(message) | {
        "acknowledged": ack_outcome(message.ack)[0],  # MSA-1; "" when none was sent
        # another message sent earlier under the same control id, with other content
        "reuses_control_id_of": message.duplicate_of,
    }


async def _requests(resources: ResourceStore, correlation: str) -> list[Json]:
    """The FHIR API calls made under this id, from their AuditEvents, oldest first."""
    filters = [AuditFilter("correlation", "=", correlation)]
    page = await resources.audit.search(filters, MAX_REQUESTS, None, newest_first=False)
    return [_request(orjson.loads(stored.body or b"{}")) for stored in page.items]


def _request(event: Json) -> Json:
    what = ((event.get("entity") or [{}])[0].get("what") or {}).get("reference", "")
    return {
        "at": _hospital_time(event.get("recorded", "")),
        "by": ((event.get("agent") or [{}])[0]).get("name", ""),
        "interaction": ((event.get("subtype") or [{}])[0]).get("code", ""),
        "action": event.get("action", ""),
        "what": what,
        "outcome": event.get("outcome", ""),  # 0 success, 4 refused, 8 failed
    }


def _hospital_time(recorded: str) -> str:
    """An AuditEvent's time (UTC) as every other time the trace shows: +08:00."""
    try:
        return shown(datetime.fromisoformat(recorded.replace("Z", "+00:00")))
    except ValueError:
        return recorded


def change(version: StoredVersion) -> str:
    if version.deleted:
        return "deleted"
    return "created" if version.version == 1 else "updated"


def _version(version: StoredVersion) -> Json:
    body = orjson.loads(version.body) if version.body else {}
    return {
        "reference": f"{version.type}/{version.id}/_history/{version.version}",
        "change": change(version),
        "at": shown(version.last_updated),
        "by": system_of(body),  # the sender or API caller (meta.source); "" for a deletion
    }


def _events(versions: Sequence[StoredVersion]) -> list[Json]:
    """The routing keys the versions were published under, with how many of each (a version
    is published once it is committed, by the event relay; a deletion as ``deleted``)."""
    counts: dict[str, int] = {}
    for version in versions:
        key = f"fhir.{version.type}.{change(version)}"
        counts[key] = counts.get(key, 0) + 1
    return [{"routing_key": key, "versions": n} for key, n in counts.items()]


def lines(found: Trace) -> list[str]:
    """The trace for a person at a terminal."""
    if found.candidates:
        return _candidate_lines(found)
    out = [f"correlation id {found.correlation}"]
    if found.message is not None:
        out += _message_lines(found.message)
    for r in found.requests:
        outcome = {"0": "ok", "4": "refused", "8": "failed"}.get(r["outcome"], r["outcome"])
        out.append(f"request    {r['at']}  {r['interaction']} {r['what']} by {r['by']}: {outcome}")
    for v in found.versions:
        by = f"  by {v['by']}" if v["by"] else ""
        out.append(f"version    {v['at']}  {v['reference']}  {v['change']}{by}")
    if found.more_versions:
        out.append(f"version    ... more than {MAX_VERSIONS}, the first ones shown")
    for e in found.events:
        out.append(f"event      {e['routing_key']}  ({e['versions']})")
    for section, items in found.sections.items():
        for item in items:
            out.append(f"{section[:-1] if section.endswith('s') else section:<10} {item['line']}")
    if not found.found:
        out.append("nothing found: no message, version, alert or submission has this id")
    return out


def _candidate_lines(found: Trace) -> list[str]:
    out = [f"{len(found.candidates)} messages have control id {found.correlation}:"]
    for c in found.candidates:
        out.append(f"  {c['id']}  {c['received_at']}  {c['sender']}  {c['type']}")
    return [*out, "trace one of them by its id"]


def _message_lines(m: Json) -> list[str]:
    error = f": {m['error']}" if m["error"] else ""
    out = [
        f"received   {m['received_at']}  {m['type']} from {m['sender']} ({m['peer']}), "
        f"control id {m['control_id']}, ACK {m['acknowledged'] or 'none'}",
        f"archived   {m['id']}  status {m['status']}{error}, attempts {m['attempts']}",
    ]
    if m["reuses_control_id_of"]:
        out.append(f"archived   reuses the control id of {m['reuses_control_id_of']}")
    if m["status"] == "failed":
        out.append("dead       see `jianhu dlq list hl7v2.normalizer` (redrive it there)")
    return out


def access_event(caller: str, role: str, found: Trace, recorded: str) -> Json:
    """The AuditEvent of looking at a trace: it names the patients' resources it showed (first,
    so the trail's search by entity finds it under them) and the correlation id."""
    references = (v["reference"].partition("/_history/")[0] for v in found.versions)
    patients = list(dict.fromkeys(r for r in references if r.startswith("Patient/")))
    entities: list[Json] = [{"what": {"reference": ref}} for ref in patients]
    entities.append({"what": {"identifier": {"value": found.correlation}}, "name": "correlation"})
    return {
        "resourceType": "AuditEvent",
        "type": {"system": AUDIT_TYPE, "code": "trace", "display": "消息追踪"},
        "subtype": [{"system": AUDIT_TYPE, "code": "trace"}],
        "action": "R",
        "recorded": recorded,
        "outcome": "0",
        "agent": [{"who": {"identifier": {"value": caller}}, "name": caller, "requestor": True,
                   "role": [{"text": role}]}],
        "source": {"observer": {"display": "Jianhu trace"}},
        "entity": entities,
    }  # fmt: skip
