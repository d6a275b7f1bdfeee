"""Reporting inpatient stays to the DRG platform: which stays, built from what, sent when.

A periodic job looks at every inpatient Encounter (class IMP) that is ``finished`` and whose
stay changed since its last run (the Encounter itself, or a Condition, Procedure, ChargeItem
or Claim of it): it loads the stay from the store, builds the front page, settlement list and
fee details, checks them, and submits them through the ledger. The ledger makes this safe to
repeat: the same content is not sent again, changed content is reversed and uploaded again,
and a stay our checks find wanting is recorded as not sent, with the fields, for a person.

Changes younger than ``QUIET`` wait for the next run, so a discharge followed by its charges
a minute later is reported once, complete, not uploaded and at once reversed."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from adapters.drg import interfaces as drg
from adapters.drg.documents import prepare
from adapters.drg.interfaces import business_key
from adapters.drg.stay import Stay
from adapters.framework.delivery import Courier
from hub.base.errors import ResourceGoneError, ResourceNotFoundError
from hub.base.json import Json
from hub.base.logs import log_event
from store.index import instant
from store.query import parse_search
from store.resources import ResourceStore

log = logging.getLogger(__name__)
QUIET = timedelta(minutes=10)
PAGE = 500
# the resources of a stay, and the search parameter that points at its Encounter
PARTS = (
    ("Condition", "encounter"),
    ("Procedure", "encounter"),
    ("ChargeItem", "context"),
    ("Claim", "encounter"),
)


@dataclass(frozen=True)
class Reported:
    encounter: str
    statuses: dict[str, str]  # interface -> ledger status


async def changed_stays(resources: ResourceStore, since: datetime, until: datetime) -> list[str]:
    """Encounter ids whose stay changed in [since, until)."""
    window = [("_lastUpdated", f"ge{instant(since)}"), ("_lastUpdated", f"lt{instant(until)}")]
    found: set[str] = set()
    for stored in await _all(resources, "Encounter", [*window, ("class", "IMP")]):
        found.add(stored["id"])
    for type_, param in PARTS:
        for part in await _all(resources, type_, window):
            for reference in _encounter_references(part, param):
                found.add(reference.removeprefix("Encounter/"))
    return sorted(found)


async def load_stay(resources: ResourceStore, encounter_id: str) -> Stay | None:
    """The stay of a finished inpatient Encounter; None for anything else."""
    encounter = await _read(resources, "Encounter", encounter_id)
    if encounter is None or encounter.get("status") != "finished":
        return None
    if encounter.get("class", {}).get("code") != "IMP":
        return None
    subject = encounter.get("subject", {}).get("reference", "")
    patient = await _read(resources, "Patient", subject.removeprefix("Patient/"))
    if patient is None:
        return None
    target = f"Encounter/{encounter_id}"
    parts = {type_: await _all(resources, type_, [(param, target)]) for type_, param in PARTS}
    coverages = await _all(resources, "Coverage", [("beneficiary", subject), ("status", "active")])
    return Stay(
        patient=patient,
        encounter=encounter,
        conditions=parts["Condition"],
        procedures=parts["Procedure"],
        charge_items=parts["ChargeItem"],
        coverage=coverages[0] if coverages else None,
        claim=parts["Claim"][0] if parts["Claim"] else None,
    )


async def report(delivery: Courier, stay: Stay) -> Reported:
    prepared = prepare(stay)
    bah = prepared.front_page.get("MAIN_DATA", {}).get("BAH", "")
    zycs = prepared.front_page.get("MAIN_DATA", {}).get("ZYCS", 1)
    key = business_key(bah, zycs)
    documents: Sequence[tuple[str, Json]] = (
        (drg.FRONT_PAGE, prepared.front_page),
        (drg.SETTLEMENT_LIST, prepared.settlement_list),
        (drg.FEE_DETAILS, prepared.fee_details),
    )
    statuses = {}
    sources = stay.correlations()
    if not prepared.sendable:
        problems = "; ".join(f"{p.field}: {p.message}" for p in prepared.problems)
        for interface, payload in documents:
            refused = await delivery.refuse(drg.ADAPTER, interface, key, payload, problems, sources)
            statuses[interface] = refused.status
    else:
        for interface, payload in documents:
            submitted = await delivery.submit(drg.ADAPTER, interface, key, payload, sources)
            statuses[interface] = submitted.status
    outcome = " ".join(f"{interface}={status}" for interface, status in statuses.items())
    log_event(log, "drg-stay-reported", encounter=stay.encounter["id"], statuses=outcome)
    return Reported(stay.encounter["id"], statuses)


async def report_changed(
    resources: ResourceStore,
    delivery: Courier,
    since: datetime,
    now: datetime,
    quiet: timedelta = QUIET,
) -> list[Reported]:
    """One run of the job: the stays that changed since ``since`` and have been quiet for
    ``quiet`` (a younger change is seen again by the next run)."""
    done = []
    for encounter_id in await changed_stays(resources, since - quiet, now):
        stay = await load_stay(resources, encounter_id)
        if stay is None or await _changed_after(resources, stay, now - quiet):
            continue
        done.append(await report(delivery, stay))
    return done


async def _changed_after(resources: ResourceStore, stay: Stay, moment: datetime) -> bool:
    newest = max(
        (r.get("meta", {}).get("lastUpdated", "") for r in _resources_of(stay)), default=""
    )
    return bool(newest) and newest >= instant(moment)


def _resources_of(stay: Stay) -> list[Json]:
    found = [stay.encounter, *stay.conditions, *stay.procedures, *stay.charge_items]
    return found + ([stay.claim] if stay.claim else [])


def _encounter_references(resource: Json, param: str) -> list[str]:
    if param == "context":
        value = resource.get("context", {}).get("reference", "")
        return [value] if value.startswith("Encounter/") else []
    if resource.get("resourceType") == "Claim":
        return [
            e.get("reference", "")
            for item in resource.get("item", [])
            for e in item.get("encounter", [])
            if e.get("reference", "").startswith("Encounter/")
        ]
    value = resource.get("encounter", {}).get("reference", "")
    return [value] if value.startswith("Encounter/") else []


async def _read(resources: ResourceStore, type_: str, id_: str) -> Json | None:
    try:
        stored = await resources.read(type_, id_)
    except (ResourceNotFoundError, ResourceGoneError):
        return None
    found: Json = orjson.loads(stored.body or b"{}")
    return found


async def _all(resources: ResourceStore, type_: str, pairs: list[tuple[str, str]]) -> list[Json]:
    query = parse_search(type_, pairs)
    found: list[Json] = []
    cursor = None
    while True:
        page = await resources.search(query, count=PAGE, cursor=cursor)
        found.extend(orjson.loads(item.body or b"{}") for item in page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor
