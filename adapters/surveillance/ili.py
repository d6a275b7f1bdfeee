"""Influenza-like illness (ILI) counts of the monitored clinics: per business day, clinic and
age band, the ILI visits against all the clinic's visits of that band (numerator and
denominator from the same visits, as the 2017 national plan asks), and the week's sums, which
the platform wants by Monday 24:00 for the week before."""

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from adapters.surveillance.cases import IliVisit, age_on
from adapters.surveillance.rules import IliRules
from hub.base.hospital_time import HOSPITAL, moment_of

Json = dict[str, Any]


def ili_rows(
    visits: Sequence[IliVisit], ages: dict[str, int | None], rules: IliRules
) -> list[Json]:
    """One row per (day, clinic, band) that had visits; ``ages``: visit id -> the patient's age
    on the visit's day, None when unknown (those visits count in no band and are left out)."""
    totals: Counter[tuple[date, str, str]] = Counter()
    ili: Counter[tuple[date, str, str]] = Counter()
    for visit in visits:
        began = moment_of((visit.encounter.get("period") or {}).get("start"))
        age = ages.get(str(visit.encounter.get("id")))
        if began is None or age is None:
            continue
        key = (began.astimezone(HOSPITAL).date(), visit.clinic, rules.band(age).code)
        totals[key] += 1
        ili[key] += visit.ili
    names = {band.code: band.name for band in rules.bands}
    return [
        {
            "record_id": f"{day.isoformat()}|{clinic}|{band}",
            "day": day.isoformat(),
            "clinic": clinic,
            "band_code": band,
            "band_name": names[band],
            "ili_cases": ili[(day, clinic, band)],
            "visits": count,
        }
        for (day, clinic, band), count in sorted(totals.items())
    ]


def week_rows(days: Sequence[Json], monday: date) -> list[Json]:
    """The week's sums per clinic and band, from its daily rows."""
    sunday = monday + timedelta(days=6)
    totals: Counter[tuple[str, str]] = Counter()
    ili: Counter[tuple[str, str]] = Counter()
    names = {}
    for row in days:
        if not monday.isoformat() <= row["day"] <= sunday.isoformat():
            continue
        key = (row["clinic"], row["band_code"])
        totals[key] += row["visits"]
        ili[key] += row["ili_cases"]
        names[row["band_code"]] = row["band_name"]
    return [
        {
            "record_id": f"{monday.isoformat()}|{clinic}|{band}",
            "week_start": monday.isoformat(),
            "week_end": sunday.isoformat(),
            "clinic": clinic,
            "band_code": band,
            "band_name": names[band],
            "ili_cases": ili[(clinic, band)],
            "visits": count,
        }
        for (clinic, band), count in sorted(totals.items())
    ]


def ages_at_visits(visits: Sequence[IliVisit], patients: dict[str, Json]) -> dict[str, int | None]:
    """Visit id -> the patient's age on the visit's day (None when unknown)."""
    ages: dict[str, int | None] = {}
    for visit in visits:
        visit_id = str(visit.encounter.get("id"))
        subject = (visit.encounter.get("subject") or {}).get("reference", "")
        began = moment_of((visit.encounter.get("period") or {}).get("start"))
        patient = patients.get(subject)
        if patient is None or began is None or not patient.get("birthDate"):
            ages[visit_id] = None
            continue
        ages[visit_id] = age_on(patient["birthDate"], began.astimezone(HOSPITAL).date())
    return ages
