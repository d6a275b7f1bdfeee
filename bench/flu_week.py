"""S5 benchmark: influenza case finding for one week (the four grounds, the report set and the
ILI counts of the monitored clinics) on a SQLite clinical store holding a generated season week
at a 2,000-bed hospital's scale (8,000 outpatient and emergency visits a day with their
temperatures, diagnoses, flu tests and antivirals; 400 flu stays a day), written on top of
whatever the store already holds (``--store``: the S1 benchmark's 5 million resources). Prints
the median time of the week's extraction and what it found. Not a test: it prints figures.

    python bench/flu_week.py [--store PATH] [--visits 8000] [--runs 3]
"""

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.surveillance.report import day_bounds, extract
from adapters.surveillance.rules import case_rules
from adapters.surveillance.season import generate
from hub.base.errors import ResourceNotFoundError
from store.plan import Write, WriteMode
from store.sqlite import SqliteStore

MONDAY = date(2026, 11, 23)
BATCH = 2000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--visits", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(args.store or Path(folder) / "hub.sqlite3")
        await store.open()
        try:
            await store.resources.read("Encounter", "v1")
            written = 0
        except ResourceNotFoundError:
            season = generate(MONDAY, days=7, visits_a_day=args.visits)
            for i in range(0, len(season.resources), BATCH):
                batch = season.resources[i : i + BATCH]
                await store.resources.apply([Write.of(WriteMode.REPLACE, r) for r in batch])
            written = len(season.resources)
        start, _ = day_bounds(MONDAY)
        _, end = day_bounds(MONDAY + timedelta(days=6))
        times, found = [], {}
        for _ in range(args.runs):
            began = time.perf_counter()
            found = await extract(store.resources, case_rules(), start, end)
            times.append(time.perf_counter() - began)
        await store.close()
    print(f"season week written: {written:,} resources (0: there already)")
    print(f"one week's flu extraction: median {statistics.median(times):.2f} s over {args.runs}")
    print("  " + ", ".join(f"{kind} {len(rows):,}" for kind, rows in found.items()))


if __name__ == "__main__":
    asyncio.run(main())
