"""Seeds a SQLite clinical store for the FHIR API benchmark: patients, each with encounters,
observations and conditions, generated (nothing downloaded). Deterministic for a given size.

    python bench/fhir_seed.py DATA_DIR [--patients 10000]

About 100 resources per patient: 1 Patient, 5 Encounters, 80 Observations, 14 Conditions.
"""

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhir_profiles.identifiers import MEDICAL_RECORD_NUMBER, VISIT_CARD
from store.plan import Write, WriteMode
from store.sqlite import SqliteStore

FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
LABS = [
    ("718-7", "血红蛋白", "g/L", 110, 170),
    ("2345-7", "葡萄糖", "mmol/L", 3.5, 11),
    ("6690-2", "白细胞计数", "10*9/L", 3, 15),
    ("777-3", "血小板计数", "10*9/L", 100, 400),
    ("2160-0", "肌酐", "umol/L", 40, 130),
    ("1742-6", "丙氨酸氨基转移酶", "U/L", 5, 80),
    ("2951-2", "钠", "mmol/L", 130, 150),
    ("2823-3", "钾", "mmol/L", 3.2, 5.6),
]
DIAGNOSES = [
    ("J11.1", "流行性感冒"),
    ("I10", "原发性高血压"),
    ("E11.9", "2型糖尿病"),
    ("J18.9", "肺炎"),
]
PER_PATIENT = (1, 5, 80, 14)


def patient_id(number: int) -> str:
    return f"pt{number:06d}"


def card_number(number: int) -> str:
    return f"JZK{number:08d}"


def resources_for(number: int, rng: random.Random) -> list[dict[str, Any]]:
    pid = patient_id(number)
    subject = {"reference": f"Patient/{pid}"}
    found: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [
                {"system": VISIT_CARD, "value": card_number(number)},
                {"system": MEDICAL_RECORD_NUMBER, "value": f"BA{number:08d}"},
            ],
            "name": [{"text": rng.choice(FAMILY) + rng.choice(GIVEN) + rng.choice(GIVEN)}],
            "gender": rng.choice(["male", "female"]),
            "birthDate": f"{rng.randint(1940, 2020)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}",
        }
    ]
    for visit in range(PER_PATIENT[1]):
        found.append(
            {
                "resourceType": "Encounter",
                "id": f"{pid}-e{visit}",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": subject,
                "period": {"start": f"2026-{visit + 1:02d}-10T09:00:00+08:00"},
            }
        )
    for position in range(PER_PATIENT[2]):
        code, name, unit, low, high = LABS[position % len(LABS)]
        found.append(
            {
                "resourceType": "Observation",
                "id": f"{pid}-o{position}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": name},
                "subject": subject,
                "encounter": {"reference": f"Encounter/{pid}-e{position % PER_PATIENT[1]}"},
                "effectiveDateTime": f"2026-{position % 12 + 1:02d}-{position % 28 + 1:02d}"
                "T08:30:00+08:00",
                "valueQuantity": {
                    "value": round(rng.uniform(low, high), 1),
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )
    for position in range(PER_PATIENT[3]):
        code, name = DIAGNOSES[position % len(DIAGNOSES)]
        found.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-c{position}",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}],
                    "text": name,
                },
                "subject": subject,
                "recordedDate": f"2026-0{position % 9 + 1}-15",
            }
        )
    return found


async def seed(data_dir: Path, patients: int) -> int:
    store = SqliteStore(data_dir / "jianhu.sqlite3")
    await store.open()
    resources = store.resources
    rng = random.Random(20261126)
    written, started = 0, time.perf_counter()
    for number in range(patients):
        plan = [Write.of(WriteMode.CREATE, r) for r in resources_for(number, rng)]
        await resources.apply(plan)
        written += len(plan)
        if number % 1000 == 999:
            rate = written / (time.perf_counter() - started)
            print(f"  seeded {written:,} resources ({rate:,.0f}/s)", flush=True)
    # the benchmark measures the API, not the relay
    while events := await resources.pending_events(10_000):
        await resources.events_published(events)
    await store.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--patients", type=int, default=10_000)
    args = parser.parse_args()
    count = asyncio.run(seed(args.data_dir, args.patients))
    print(f"seeded {count:,} resources into {args.data_dir}")


if __name__ == "__main__":
    main()
