"""The few columns of an AuditEvent that searches use, taken out of the event once, for every
backend's lean audit log."""

from datetime import UTC, datetime
from typing import Any

import orjson

from store.index import date_range, instant
from store.resources import Resource

# IHE Basic Audit Log Patterns: the entity that carries the request's id (X-Request-Id), here
# the correlation id the request ran under
REQUEST_ID_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
REQUEST_ID_CODE = "XrequestId"


def request_id_entity(correlation: str) -> Resource:
    return {
        "what": {"identifier": {"value": correlation}},
        "type": {"system": REQUEST_ID_TYPE, "code": REQUEST_ID_CODE},
    }


def correlation_of(event: Resource) -> str | None:
    for entity in event.get("entity") or []:
        if (entity.get("type") or {}).get("code") == REQUEST_ID_CODE:
            value = ((entity.get("what") or {}).get("identifier") or {}).get("value")
            return str(value) if value else None
    return None


def columns_of(event: Resource) -> tuple[Any, ...]:
    agents = event.get("agent") or [{}]
    entities = event.get("entity") or [{}]
    subtypes = event.get("subtype") or [{}]
    what = (entities[0].get("what") or {}).get("reference")
    recorded_text = event.get("recorded", "")
    if len(recorded_text) == 24 and recorded_text.endswith("Z"):  # already a UTC instant
        recorded: tuple[str, ...] = (recorded_text,)
    else:
        recorded = date_range(recorded_text) or (instant(datetime.now(UTC)),)
    return (
        event["id"],
        recorded[0],  # UTC with milliseconds, so instants compare as text
        agents[0].get("name"),
        what,
        subtypes[0].get("code"),
        event.get("action"),
        event.get("outcome"),
        correlation_of(event),
        orjson.dumps(event),
    )
