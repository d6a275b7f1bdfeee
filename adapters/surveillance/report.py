"""A surveillance report run: read the period, find the cases, build the report set, shape
each record to the platform's layout, check it, and send it through the ledger (business key
``<record type>:<record id>``; the same content is sent once, changed content is corrected as
the platform is configured, a record that fails its field table is held naming the fields)."""

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson

from adapters.framework.delivery import Courier
from adapters.framework.row_platform import RowPlatformConfig, Tally, send_row
from adapters.surveillance import records as build
from adapters.surveillance.cases import Case, find_cases, monitored_visits
from adapters.surveillance.ili import ages_at_visits, ili_rows
from adapters.surveillance.layout import Layout
from adapters.surveillance.period import Period, load_period, search
from adapters.surveillance.records import CaseData
from adapters.surveillance.rules import CaseRules
from hub.base.hospital_time import HOSPITAL, moment_of
from hub.base.logs import log_event
from store.resources import ResourceStore

log = logging.getLogger(__name__)
Json = dict[str, Any]
CaseFinder = Callable[[Period, CaseRules], list[Case]]


async def extract(
    store: ResourceStore,
    rules: CaseRules,
    start: datetime,
    end: datetime,
    finder: CaseFinder = find_cases,
    with_ili: bool = True,
) -> dict[str, list[Json]]:
    """The report set of the period, by record type."""
    period = await load_period(store, rules, start, end)
    visits = monitored_visits(period, rules) if with_ili else []
    # what the period's records make cases, and the stays that ended in it (their evidence
    # may be older): each judged again on everything that names it, so a case's grounds do not
    # depend on the day it is looked at
    candidates = {case.id for case in finder(period, rules)}
    candidates |= {
        id_ for id_, e in period.encounters.items() if _stay(e) and _ended_within(e, start, end)
    }
    cases: list[Case] = []
    linked_of = await linked_resources(store, sorted(candidates))
    for encounter_id in sorted(candidates):
        encounter = period.encounters[encounter_id]
        if (case := _judged(encounter, linked_of[encounter_id], rules, finder)) is not None:
            cases.append(case)
    subjects = {
        (e.get("subject") or {}).get("reference", "")
        for e in [c.encounter for c in cases] + [v.encounter for v in visits]
    }
    patients = await patients_of(store, subjects)
    found: dict[str, list[Json]] = {
        kind: [] for kind in ("case", "discharge", "summary", "death", "medication", "lab")
    }
    for case in cases:
        subject = (case.encounter.get("subject") or {}).get("reference", "")
        data = CaseData(case, patients.get(subject, {}), linked_of[case.id])
        found["case"].append(build.case_record(data))
        if _ended_within(case.encounter, start, end) and _stay(case.encounter):
            found["discharge"].append(build.discharge_record(data))
            found["summary"] += build.summary_records(data)
        if _ended_within(case.encounter, start, end) and (death := build.death_record(data)):
            found["death"].append(death)
        found["medication"] += build.medication_records(data)
        found["lab"] += build.lab_records(data)
    if with_ili:
        found["ili"] = ili_rows(visits, ages_at_visits(visits, patients), rules.ili)
    log_event(
        log,
        "surveillance-extracted",
        start=start.isoformat(),
        cases=len(cases),
        records=sum(len(rows) for rows in found.values()),
    )
    return found


async def deliver(
    courier: Courier,
    adapter: str,
    config: RowPlatformConfig,
    layout: Layout,
    found: Mapping[str, Sequence[Json]],
    tally: Tally | None = None,
) -> Tally:
    tally = tally or Tally()
    for kind, records in found.items():
        table = layout.tables.get(kind)
        if table is None:  # the platform takes no such record
            continue
        for record in records:
            row = table.shape({**record, "organisation": config.organisation, "flag": "0"})
            key = f"{kind}:{record['record_id']}"
            tally.add(await send_row(courier, adapter, kind, key, row, table.problems(row)))
    return tally


# what names a visit: (type, its reference search parameter)
VISIT_LINKS = (
    ("Condition", "encounter"),
    ("Observation", "encounter"),
    ("MedicationRequest", "encounter"),
    ("MedicationAdministration", "context"),
    ("DocumentReference", "encounter"),
)
BATCH = 100  # visits per search: the most values one search parameter takes


async def linked_resources(
    store: ResourceStore, encounter_ids: Sequence[str]
) -> dict[str, list[Json]]:
    """Everything that names each visit, a hundred visits per search of each type."""
    linked: dict[str, list[Json]] = {id_: [] for id_ in encounter_ids}
    for first in range(0, len(encounter_ids), BATCH):
        targets = ",".join(f"Encounter/{id_}" for id_ in encounter_ids[first : first + BATCH])
        for type_, param in VISIT_LINKS:
            async for resource in search(store, type_, [(param, targets)]):
                reference = (resource.get(param) or {}).get("reference", "")
                if type_ == "DocumentReference":
                    for visit in (resource.get("context") or {}).get("encounter", []):
                        _link(linked, visit.get("reference", ""), resource)
                else:
                    _link(linked, reference, resource)
    return linked


def _link(linked: dict[str, list[Json]], reference: str, resource: Json) -> None:
    visit = reference.rpartition("/")[2]
    if visit in linked:
        linked[visit].append(resource)


def _judged(
    encounter: Json, linked: list[Json], rules: CaseRules, finder: CaseFinder
) -> Case | None:
    """The visit judged on everything that names it, by the same finder."""
    period = Period(datetime.min.replace(tzinfo=HOSPITAL), datetime.max.replace(tzinfo=HOSPITAL))
    period.encounters[encounter["id"]] = encounter
    for resource in linked:
        kind = resource.get("resourceType")
        if kind == "Condition":
            period.conditions[encounter["id"]].append(resource)
        elif kind == "Observation":
            period.observations[encounter["id"]].append(resource)
        elif kind in ("MedicationRequest", "MedicationAdministration"):
            period.medications[encounter["id"]].append(resource)
    found = finder(period, rules)
    return found[0] if found else None


async def patients_of(store: ResourceStore, subjects: set[str]) -> dict[str, Json]:
    keys = [("Patient", ref.partition("/")[2]) for ref in subjects if ref.startswith("Patient/")]
    found = await store.read_many(keys)
    return {f"Patient/{v.id}": orjson.loads(v.body) for v in found if v.body is not None}


def _ended_within(encounter: Json, start: datetime, end: datetime) -> bool:
    ended = moment_of((encounter.get("period") or {}).get("end"))
    return ended is not None and start <= ended < end


def _stay(encounter: Json) -> bool:
    return (encounter.get("class") or {}).get("code") in ("IMP", "ACUTE", "NONAC")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), HOSPITAL)
    return start, start + timedelta(days=1)
