"""The few columns of an AuditEvent that searches use, taken out of the event once, for every
backend's lean audit log."""

from datetime import UTC, datetime
from typing import Any

import orjson

from store.index import date_range, instant
from store.resources import Resource


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
        orjson.dumps(event),
    )
