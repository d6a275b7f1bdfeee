"""A realistic influenza season written into the store, for the tests, the benchmarks and a
hospital's dry runs: outpatient, emergency, fever-clinic and inpatient visits with their
temperatures, complaints and diagnoses, flu tests and antivirals, stays with daily doses,
results and discharge summaries, and some deaths. Every choice is recorded as it is made, so
the expected counts (cases, ILI by clinic and age band, discharges, deaths, records) are known
without running the hub's rules.

``visits_a_day`` sets the scale: 40 is a small test, 8,000 a 2,000-bed hospital."""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from fhir_profiles.identifiers import RESIDENT_ID_CARD
from hub.base.hospital_time import HOSPITAL

Json = dict[str, Any]
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
# clinic code, name, class, monitored for ILI, share of the day's visits
CLINICS = (
    ("NKMZ", "内科门诊", "AMB", True, 0.35),
    ("FRMZ", "发热门诊", "AMB", True, 0.15),
    ("EKMZ", "儿内科门诊", "AMB", True, 0.15),
    ("NKJZ", "内科急诊", "EMER", True, 0.10),
    ("GKMZ", "骨科门诊", "AMB", False, 0.25),
)
BIRTH_YEARS = (2024, 2016, 2005, 1980, 1950)  # one in each of the five ILI bands
COMPLAINTS = ("发热伴咳嗽2天", "咽痛、发热1天", "发热1天", "腹痛3天", "腰背痛1周")
FLU_DIAGNOSES = (("J10.100", "甲型流行性感冒"), ("J11.100", "流行性感冒"))
OTHER_DIAGNOSES = (("J06.900", "急性上呼吸道感染"), ("K29.700", "胃炎"), ("M54.500", "腰痛"))
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass
class Expected:
    cases: set[str] = field(default_factory=set)  # encounter ids
    grounds: Counter[str] = field(default_factory=Counter)
    ili: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (day, clinic, band)
    monitored: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    discharges: set[str] = field(default_factory=set)
    deaths: set[str] = field(default_factory=set)
    summaries: int = 0
    medications: int = 0  # records of the cases: prescriptions and administrations
    labs: int = 0  # laboratory records of the cases
    fever_visits: Counter[str] = field(default_factory=Counter)  # day -> fever-clinic visits


@dataclass
class Season:
    resources: list[Json]
    expected: Expected


def resident_id(n: int, born: date) -> str:
    body = f"330602{born:%Y%m%d}{n % 1000:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]
    return body + check


def generate(first: date, days: int, visits_a_day: int = 40, seed: int = 7) -> Season:
    rng = random.Random(seed)
    season = Season([], Expected())
    serial = 0
    for offset in range(days):
        day = first + timedelta(days=offset)
        for _ in range(visits_a_day):
            serial += 1
            _visit(season, rng, day, serial)
        for _ in range(max(1, visits_a_day // 20)):
            serial += 1
            _stay(season, rng, day, serial)
    return season


def _visit(season: Season, rng: random.Random, day: date, n: int) -> None:
    pick = rng.random()
    clinic = next(c for c in _cumulative() if pick < c[1])[0]
    code, name, cls, monitored, _ = clinic
    band = rng.randrange(5)
    patient = _patient(n, band, rng)
    began = datetime.combine(day, time(8), HOSPITAL) + timedelta(minutes=rng.randrange(720))
    complaint = COMPLAINTS[rng.randrange(3) if code != "GKMZ" else rng.randrange(3, 5)]
    temperature = round(rng.choice((36.6, 37.4, 38.2, 39.0)), 1)
    flu = code != "GKMZ" and rng.random() < 0.3
    tested = flu or (code == "FRMZ" and rng.random() < 0.5)
    treated = flu and rng.random() < 0.6
    encounter = _encounter(f"v{n}", patient, cls, began, began + timedelta(minutes=30), code, name)
    encounter["reasonCode"] = [{"text": complaint}]
    diagnosis = rng.choice(FLU_DIAGNOSES) if flu else rng.choice(OTHER_DIAGNOSES)
    found = [patient, encounter, _temperature(n, encounter, began, temperature)]
    found.append(_condition(f"c{n}", encounter, diagnosis, began + timedelta(minutes=10)))
    grounds = ["diagnosis"] if flu else []
    if tested:
        found.append(_flu_test(f"t{n}", encounter, began + timedelta(minutes=20), flu))
        grounds += ["pathogen"] if flu else []
    if treated:
        found.append(_prescription(f"m{n}", encounter, began + timedelta(minutes=25)))
        grounds.append("drug")
    season.resources += found
    expected, tag = season.expected, day.isoformat()
    if grounds:
        expected.cases.add(encounter["id"])
        expected.grounds.update(grounds)
        expected.medications += treated
        expected.labs += tested
    if monitored:
        key = (tag, code, str(band + 1))
        expected.monitored[key] += 1
        symptoms = "咳嗽" in complaint or "咽痛" in complaint
        expected.ili[key] += temperature >= 38.0 and symptoms
    if code == "FRMZ":
        expected.fever_visits[tag] += 1


def _stay(season: Season, rng: random.Random, day: date, n: int) -> None:
    """A flu patient admitted through the wards, a dose and a result a day, discharged (one in
    five dies) after two to five days, with a discharge summary."""
    patient = _patient(n, 4 if rng.random() < 0.5 else 3, rng)
    began = datetime.combine(day, time(10), HOSPITAL)
    nights = rng.randrange(2, 6)
    ended = began + timedelta(days=nights, hours=1)
    encounter = _encounter(f"s{n}", patient, "IMP", began, ended, "HXNK", "呼吸内科病区")
    still_in = ended > datetime.now(HOSPITAL)  # a season that reaches today: some stay on
    died = not still_in and rng.random() < 0.2
    if still_in:
        encounter["status"] = "in-progress"
        del encounter["period"]["end"]
    else:
        disposition = {"coding": [{"code": "5" if died else "1"}]}
        encounter["hospitalization"] = {"dischargeDisposition": disposition}
    if died:
        patient["deceasedDateTime"] = ended.isoformat()
    found = [patient, encounter, _condition(f"c{n}", encounter, FLU_DIAGNOSES[0], began)]
    given_nights = [
        night
        for night in range(nights)
        if began + timedelta(days=night, hours=2) <= datetime.now(HOSPITAL)
    ]
    for night in given_nights:
        given = began + timedelta(days=night, hours=2)
        found.append(_administration(f"a{n}-{night}", encounter, given))
        found.append(_blood_count(f"l{n}-{night}", encounter, given))
    if not still_in:
        found.append(_summary(f"d{n}", encounter, ended))
    season.resources += found
    expected = season.expected
    expected.cases.add(encounter["id"])
    expected.grounds.update(("diagnosis", "drug") if given_nights else ("diagnosis",))
    expected.medications += len(given_nights)
    expected.labs += len(given_nights)
    if not still_in:
        expected.summaries += 1
        expected.discharges.add(encounter["id"])
    if died:
        expected.deaths.add(encounter["id"])


def _cumulative() -> list[tuple[tuple[str, str, str, bool, float], float]]:
    total, found = 0.0, []
    for clinic in CLINICS:
        total += clinic[4]
        found.append((clinic, total))
    return found


def _patient(n: int, band: int, rng: random.Random) -> Json:
    born = date(BIRTH_YEARS[band], 1 + rng.randrange(12), 1 + rng.randrange(28))
    return {
        "resourceType": "Patient",
        "id": f"p{n}",
        "identifier": [{"system": RESIDENT_ID_CARD, "value": resident_id(n, born)}],
        "name": [{"text": f"患者{n}"}],
        "gender": rng.choice(("male", "female")),
        "birthDate": born.isoformat(),
    }


def _encounter(
    id_: str, patient: Json, cls: str, began: datetime, ended: datetime, code: str, name: str
) -> Json:
    place = {"display": name, "identifier": {"value": code}}
    return {
        "resourceType": "Encounter",
        "id": id_,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "subject": {"reference": f"Patient/{patient['id']}"},
        "period": {"start": began.isoformat(), "end": ended.isoformat()},
        "location": [{"location": place}],
    }


def _visit_of(encounter: Json) -> Json:
    return {"reference": f"Encounter/{encounter['id']}"}


def _temperature(n: int, encounter: Json, taken: datetime, celsius: float) -> Json:
    return {
        "resourceType": "Observation",
        "id": f"tw{n}",
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "8310-5", "display": "体温"}]},
        "subject": encounter["subject"],
        "encounter": _visit_of(encounter),
        "effectiveDateTime": taken.isoformat(),
        "valueQuantity": {"value": celsius, "unit": "℃", "code": "Cel"},
    }


def _condition(id_: str, encounter: Json, diagnosis: tuple[str, str], when: datetime) -> Json:
    return {
        "resourceType": "Condition",
        "id": id_,
        "code": {"coding": [{"system": ICD10, "code": diagnosis[0]}], "text": diagnosis[1]},
        "subject": encounter["subject"],
        "encounter": _visit_of(encounter),
        "recordedDate": when.isoformat(),
    }


def _flu_test(id_: str, encounter: Json, taken: datetime, positive: bool) -> Json:
    return {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "80382-5"}], "text": "甲型流感病毒抗原"},
        "subject": encounter["subject"],
        "encounter": _visit_of(encounter),
        "effectiveDateTime": taken.isoformat(),
        "valueCodeableConcept": {"text": "阳性" if positive else "阴性"},
        "interpretation": [{"coding": [{"code": "POS" if positive else "NEG"}]}],
    }


def _blood_count(id_: str, encounter: Json, taken: datetime) -> Json:
    return {
        "resourceType": "Observation",
        "id": id_,
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "6690-2"}], "text": "白细胞计数"},
        "subject": encounter["subject"],
        "encounter": _visit_of(encounter),
        "effectiveDateTime": taken.isoformat(),
        "valueQuantity": {"value": 6.5, "unit": "10*9/L"},
    }


def _prescription(id_: str, encounter: Json, when: datetime) -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": id_,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"code": "YP0301"}], "text": "磷酸奥司他韦胶囊"},
        "subject": encounter["subject"],
        "encounter": _visit_of(encounter),
        "authoredOn": when.isoformat(),
        "dosageInstruction": [
            {
                "route": {"text": "口服"},
                "doseAndRate": [{"doseQuantity": {"value": 75, "unit": "mg"}}],
            }
        ],
    }


def _administration(id_: str, encounter: Json, given: datetime) -> Json:
    return {
        "resourceType": "MedicationAdministration",
        "id": id_,
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"code": "YP0302"}], "text": "帕拉米韦注射液"},
        "subject": encounter["subject"],
        "context": _visit_of(encounter),
        "effectiveDateTime": given.isoformat(),
        "dosage": {"route": {"text": "静脉滴注"}, "dose": {"value": 300, "unit": "mg"}},
    }


def _summary(id_: str, encounter: Json, written: datetime) -> Json:
    return {
        "resourceType": "DocumentReference",
        "id": id_,
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "18842-5", "display": "出院小结"}]},
        "subject": encounter["subject"],
        "date": written.isoformat(),
        "context": {"encounter": [_visit_of(encounter)]},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "url": f"Binary/{id_}",
                    "title": "出院小结",
                }
            }
        ],
    }
