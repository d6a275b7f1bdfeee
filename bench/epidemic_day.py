"""S1 benchmark: one business day's epidemic indicators counted on a SQLite clinical store that
holds ``--days`` days of a 2,000-bed hospital's traffic (8,000 outpatient and emergency visits a
day, a tenth at the fever clinic, 300 admissions and as many discharges, 2,000 nucleic-acid and
antigen tests). Prints the store's size and the median time of the day's count. Not a test: it
prints figures.

    python bench/epidemic_day.py [--days 7] [--runs 5] [--store PATH]

``--store PATH`` keeps the seeded store (485 days are about 5 million resources and take about
half an hour to write) and uses it again when it exists; ``bench/epidemic_backfill.py`` back-fills
from the same file.
"""

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.epidemic.daily import day_values
from adapters.epidemic.indicators import catalogue
from hub.base.hospital_time import HOSPITAL
from store.plan import Write, WriteMode
from store.sqlite import SqliteStore

VISITS, ADMISSIONS, TESTS = 8000, 300, 2000
BATCH = 2000


def day_traffic(day: date, rng: random.Random) -> list[dict[str, Any]]:
    start = datetime.combine(day, datetime.min.time(), HOSPITAL)
    tag = day.isoformat()
    found: list[dict[str, Any]] = []
    for n in range(VISITS):
        began = start + timedelta(minutes=rng.randrange(7 * 60, 22 * 60))
        cls = "EMER" if n % 8 == 0 else "AMB"
        place = "FRMZ" if n % 10 == 0 else f"MZ{n % 40:02d}"
        found.append(
            {
                "resourceType": "Encounter",
                "id": f"v-{tag}-{n}",
                "status": "finished",
                "class": {"code": cls},
                "period": {
                    "start": began.isoformat(),
                    "end": (began + timedelta(minutes=20)).isoformat(),
                },
                "location": [{"location": {"display": place, "identifier": {"value": place}}}],
            }
        )
    for n in range(ADMISSIONS):
        began = start + timedelta(hours=rng.randrange(0, 24))
        stay = {"start": began.isoformat(), "end": (began + timedelta(days=5)).isoformat()}
        found.append(
            {
                "resourceType": "Encounter",
                "id": f"s-{tag}-{n}",
                "status": "finished",
                "class": {"code": "IMP"},
                "period": stay,
            }
        )
    for n in range(TESTS):
        taken = start + timedelta(minutes=rng.randrange(0, 24 * 60))
        found.append(
            {
                "resourceType": "Observation",
                "id": f"t-{tag}-{n}",
                "status": "final",
                "code": {
                    "coding": [
                        {"system": "http://loinc.org", "code": "94500-6" if n % 3 else "94558-4"}
                    ]
                },
                "effectiveDateTime": taken.isoformat(),
                "valueCodeableConcept": {"text": "阳性" if n % 25 == 0 else "阴性"},
            }
        )
    return found


LAST = date(2026, 12, 3)


async def seed(store: SqliteStore, days: int) -> int:
    """``days`` days of traffic ending on LAST; the number of resources written."""
    rng = random.Random(7)
    total = 0
    for back in range(days):
        resources = day_traffic(LAST - timedelta(days=back), rng)
        for i in range(0, len(resources), BATCH):
            batch = resources[i : i + BATCH]
            await store.resources.apply([Write.of(WriteMode.REPLACE, r) for r in batch])
        total += len(resources)
        if back % 20 == 19:
            print(f"  seeded {back + 1} days, {total:,} resources", flush=True)
    return total


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    last = LAST
    with tempfile.TemporaryDirectory() as folder:
        path = args.store or Path(folder) / "hub.sqlite3"
        fresh = not path.exists()
        store = SqliteStore(path)
        await store.open()
        seeding = time.perf_counter()
        total = await seed(store, args.days) if fresh else args.days * (VISITS + ADMISSIONS + TESTS)
        seeded = time.perf_counter() - seeding
        times, values = [], {}
        for _ in range(args.runs):
            began = time.perf_counter()
            values = await day_values(store.resources, catalogue(), last)
            times.append(time.perf_counter() - began)
        await store.close()
    print(f"store: {total:,} resources over {args.days} days (seeded in {seeded:.0f} s)")
    print(f"one day's indicators: median {statistics.median(times):.2f} s over {args.runs} runs")
    print(
        f"  FRMZRC {values['FRMZRC']:.0f}  MZRC {values['MZRC']:.0f}  ZYRS {values['ZYRS']:.0f}  "
        f"HSJCRC {values['HSJCRC']:.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
