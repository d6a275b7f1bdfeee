"""How long the lab service takes to rebuild its memory at start (tubes in flight, alerts)
from a SQLite store holding a busy day of lab work: per tube an Encounter, a ServiceRequest,
a Specimen and, for tubes already resulted, a DiagnosticReport. Not a test: it prints figures.

    python bench/lab_rebuild.py [--tubes 20000] [--resulted 0.5]

The store is seeded first (timed apart), then ``rebuild`` runs as a starting hub runs it.
"""

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.base.json import Json
from hub.lab.rebuild import rebuild
from hub.lab.service import LabService
from store.plan import Write, WriteMode
from store.sqlite import SqliteStore

TESTS = ["CBC", "ELEC", "LFT", "RFT", "COAG", "FLUAB", "UA"]
CLASSES = ["AMB", "IMP", "EMER"]


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def tube(n: int, now: datetime, resulted: bool, rng: random.Random) -> list[Json]:
    collected = now - timedelta(minutes=rng.uniform(5, 600))
    visit: Json = {
        "resourceType": "Encounter",
        "id": f"enc{n}",
        "status": "in-progress",
        "class": {"code": rng.choice(CLASSES)},
        "serviceType": {"text": rng.choice(["儿科", "急诊科", "呼吸内科", "普外科"])},
    }
    order: Json = {
        "resourceType": "ServiceRequest",
        "id": f"sr{n}",
        "status": "active",
        "intent": "order",
        "priority": "stat" if rng.random() < 0.2 else "routine",
        "code": {"coding": [{"code": rng.choice(TESTS)}]},
        "subject": {"reference": "Patient/bench"},
        "encounter": {"reference": f"Encounter/enc{n}"},
        "authoredOn": instant(collected - timedelta(minutes=10)),
    }
    specimen: Json = {
        "resourceType": "Specimen",
        "id": f"spc{n}",
        "identifier": [{"system": "urn:jianhu:sid:specimen:his", "value": f"26{n:08d}"}],
        "subject": {"reference": "Patient/bench"},
        "request": [{"reference": f"ServiceRequest/sr{n}"}],
        "collection": {"collectedDateTime": instant(collected)},
        "receivedTime": instant(collected + timedelta(minutes=rng.uniform(5, 40))),
    }
    found = [visit, order, specimen]
    if resulted:
        found.append(
            {
                "resourceType": "DiagnosticReport",
                "id": f"rep{n}",
                "status": "final",
                "code": order["code"],
                "subject": {"reference": "Patient/bench"},
                "basedOn": [{"reference": f"ServiceRequest/sr{n}"}],
                "specimen": [{"reference": f"Specimen/spc{n}"}],
                "issued": instant(collected + timedelta(minutes=rng.uniform(45, 120))),
            }
        )
    return found


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(1)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "jianhu.sqlite3")
        await store.open()
        try:
            began = time.perf_counter()
            written = 0
            for start in range(0, args.tubes, 500):
                plan = [
                    Write.of(WriteMode.CREATE, item)
                    for n in range(start, min(start + 500, args.tubes))
                    for item in tube(n, now, rng.random() < args.resulted, rng)
                ]
                await store.resources.apply(plan)
                written += len(plan)
            print(
                f"seeded {args.tubes:,} tubes, {written:,} resources in "
                f"{time.perf_counter() - began:.1f} s"
            )
            service = LabService(store.resources, lambda _: None)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            done = await rebuild(service, store.resources, store.archive, now - timedelta(hours=48))
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            print(
                f"rebuilt {done.resources:,} resources in {done.seconds:.1f} s "
                f"({done.resources / done.seconds:,.0f} resources/s); "
                f"in flight {service.engine.in_flight():,}, "
                f"completed {len(service.engine.completed):,}, "
                f"alerts open {len(service.engine.alerts()):,}; peak memory +{grown:.0f} MB"
            )
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tubes", type=int, default=20_000)
    parser.add_argument("--resulted", type=float, default=0.5, help="share already reported")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
