"""What a surveillance report reads of the clinical store for a period (a day, a week): the
visits that began in it and the stays that overlap it, and, recorded in it, the diagnoses, the
temperatures and flu tests, the prescriptions and administrations. Each is one search driven by
the date index (what began in the window), so a week reads a week, not the store's history.

Everything is tied to its visit by its reference (Condition.encounter, Observation.encounter,
MedicationRequest.encounter, MedicationAdministration.context); what names no visit is left
out, since a case is a visit."""

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.surveillance.rules import CaseRules
from store.listing import paged
from store.query import parse_search
from store.resources import ResourceStore

Json = dict[str, Any]
PAGE = 5000
STAY_CLASSES = ("IMP", "OBSENC", "ACUTE", "NONAC")


@dataclass
class Period:
    start: datetime
    end: datetime
    encounters: dict[str, Json] = field(default_factory=dict)  # id -> Encounter
    # encounter id -> what was recorded for it in the period
    conditions: dict[str, list[Json]] = field(default_factory=lambda: defaultdict(list))
    observations: dict[str, list[Json]] = field(default_factory=lambda: defaultdict(list))
    medications: dict[str, list[Json]] = field(default_factory=lambda: defaultdict(list))


async def load_period(
    store: ResourceStore, rules: CaseRules, start: datetime, end: datetime
) -> Period:
    period = Period(start, end)
    async for encounter in began_within(store, "Encounter", "date", start, end):
        period.encounters[encounter["id"]] = encounter
    stays = [("class", ",".join(STAY_CLASSES)), ("date", f"ge{start.isoformat()}")]
    async for encounter in search(store, "Encounter", [*stays, ("date", f"lt{end.isoformat()}")]):
        period.encounters[encounter["id"]] = encounter
    async for condition in began_within(store, "Condition", "recorded-date", start, end):
        _file(period.conditions, condition, "encounter")
    codes = ",".join((*rules.test_codes, *rules.ili.temperature_codes))
    async for observation in began_within(store, "Observation", "date", start, end, codes):
        _file(period.observations, observation, "encounter")
    async for request in began_within(store, "MedicationRequest", "authoredon", start, end):
        _file(period.medications, request, "encounter")
    async for given in began_within(
        store, "MedicationAdministration", "effective-time", start, end
    ):
        _file(period.medications, given, "context")
    return period


def _file(by_visit: dict[str, list[Json]], resource: Json, element: str) -> None:
    reference = ((resource.get(element) or {}).get("reference") or "").rpartition("/")
    if reference[0].endswith("Encounter") and reference[2]:
        by_visit[reference[2]].append(resource)


async def began_within(
    store: ResourceStore,
    type_: str,
    param: str,
    start: datetime,
    end: datetime,
    codes: str = "",
) -> AsyncIterator[Json]:
    """Resources of a type whose ``param`` date began in [start, end) (``sa`` the second
    before with ``lt``: one seek of the date index), of the given codes when named; a day per
    search, since each page of a search sorts all its window holds."""
    day_start = start
    while day_start < end:
        day_end = min(end, day_start + timedelta(days=1))
        before = (day_start - timedelta(seconds=1)).isoformat()
        pairs = [(param, f"sa{before}"), (param, f"lt{day_end.isoformat()}")]
        if codes:
            pairs.append(("code", codes))
        async for body in search(store, type_, pairs):
            yield body
        day_start = day_end


async def search(
    store: ResourceStore, type_: str, pairs: Sequence[tuple[str, str]]
) -> AsyncIterator[Json]:
    query = parse_search(type_, list(pairs))
    async for body in paged(lambda cursor: store.search(query, count=PAGE, cursor=cursor)):
        yield body
