"""FHIR API benchmark: the hub as a separate process on a seeded SQLite store, load from this
process over loopback with 32 concurrent clients. Prints requests/s and p50/p99 latency per
scenario and the hub's peak RSS. Not a test: it prints figures.

    python bench/fhir_api.py [--patients 10000] [--seconds 15] [--clients 32]

The store is seeded once into ``--data-dir``/seed (default ``.run/fhir-bench``; about 100
resources per patient, so 10,000 patients are 1,000,000 resources); each run copies it to
``--data-dir``/run first, so every run starts from the same store.
"""

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fhir_seed import card_number, patient_id, resources_for, seed
from fhir_profiles.identifiers import VISIT_CARD

ROOT = Path(__file__).resolve().parents[1]
Request = tuple[str, str, Any]  # method, path under /fhir, JSON body
Scenario = Callable[[random.Random], Request]


def scenarios(patients: int) -> dict[str, Scenario]:
    def some(rng: random.Random) -> int:
        return rng.randrange(patients)

    def read(rng: random.Random) -> Request:
        return "GET", f"Patient/{patient_id(some(rng))}", None

    def create(rng: random.Random) -> Request:
        number = some(rng)
        observation = dict(resources_for(number, random.Random(number))[10])
        del observation["id"]
        return "POST", "Observation", observation

    def update(rng: random.Random) -> Request:
        number = some(rng)
        patient = resources_for(number, random.Random(number))[0]
        return "PUT", f"Patient/{patient['id']}", {**patient, "active": rng.random() < 0.5}

    def by_identifier(rng: random.Random) -> Request:
        return "GET", f"Patient?identifier={VISIT_CARD}|{card_number(some(rng))}", None

    def observations(rng: random.Random) -> Request:
        query = (
            f"Observation?subject=Patient/{patient_id(some(rng))}"
            "&code=http://loinc.org|718-7&date=ge2026-06-01"
        )
        return "GET", query, None

    def transaction(rng: random.Random) -> Request:
        entries = []
        for _ in range(20):
            _, _, body = create(rng)
            entries.append({"resource": body, "request": {"method": "POST", "url": "Observation"}})
        return "POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    def crud_mix(rng: random.Random) -> Request:
        roll = rng.random()
        return (read if roll < 0.6 else create if roll < 0.8 else update)(rng)

    return {
        "read": read,
        "create": create,
        "update": update,
        "search identifier": by_identifier,
        "search observations": observations,
        "transaction (20)": transaction,
        "CRUD mix 60/20/20": crud_mix,
    }


async def drive(
    base: str, scenario: Scenario, clients: int, seconds: float, warmup: float
) -> tuple[float, list[float], int]:
    """(requests/s, latencies in ms, errors) over ``seconds`` after ``warmup``."""
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": "Bearer bench-key", "Content-Type": "application/fhir+json"}
    connector = aiohttp.TCPConnector(limit=clients)
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client(number: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        rng = random.Random(number)
        while (now := loop.time()) < stop_at:
            method, path, body = scenario(rng)
            began = time.perf_counter()
            async with session.request(method, f"{base}/{path}", json=body) as response:
                await response.read()
                ok = response.status < 300
            if now >= measure_from:
                latencies.append((time.perf_counter() - began) * 1000)
                errors += not ok

    async with aiohttp.ClientSession(base_url=None, headers=headers, connector=connector) as s:
        await asyncio.gather(*(client(n, s) for n in range(clients)))
    return len(latencies) / seconds, latencies, errors


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def start_hub(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JIANHU_DATA_DIR": str(data_dir),
        "JIANHU_HTTP_PORT": str(port),
        "JIANHU_API_KEYS": "bench-key:system",
        "JIANHU_LOG_LEVEL": "WARNING",
    }
    env.pop("JIANHU_AMQP_URL", None)
    jianhu = Path(sys.executable).parent / "jianhu"
    return subprocess.Popen([str(jianhu), "run"], env=env, cwd=ROOT)


async def wait_ready(base: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(base.replace("/fhir", "/readyz")) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("the hub did not become ready")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def count_resources(data_dir: Path) -> int:
    import sqlite3

    db = sqlite3.connect(data_dir / "jianhu.sqlite3")
    try:
        (total,) = db.execute("SELECT COUNT(*) FROM resource_current").fetchone()
    finally:
        db.close()
    return int(total)


async def main_async(args: argparse.Namespace) -> None:
    seeded: Path = args.data_dir / "seed"
    if not (seeded / "jianhu.sqlite3").exists():
        print(f"seeding {args.patients:,} patients into {seeded} ...", flush=True)
        await seed(seeded, args.patients)
    # every run starts from the same seeded store: the writes of one run never skew the next
    data_dir = args.data_dir / "run"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(seeded, data_dir)
    print(f"store: {count_resources(data_dir):,} resources")
    port = args.port
    hub = start_hub(data_dir, port)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        await wait_ready(base)
        rows = []
        plan = [
            (name, scenario, args.clients) for name, scenario in scenarios(args.patients).items()
        ]
        # latency without queueing: one client at a time
        plan.append(
            ("search identifier, 1 client", scenarios(args.patients)["search identifier"], 1)
        )
        if args.only:
            plan = [step for step in plan if step[0] in args.only]
        for name, scenario, clients in plan:
            rate, latencies, errors = await drive(
                base, scenario, clients, args.seconds, args.warmup
            )
            rows.append(
                (
                    name,
                    rate,
                    statistics.median(latencies),
                    percentile(latencies, 0.99),
                    errors,
                )
            )
            print(
                f"  {name:30s} {rate:8,.0f} req/s  p50 {rows[-1][2]:6.1f} ms  "
                f"p99 {rows[-1][3]:6.1f} ms  errors {errors}",
                flush=True,
            )
        rss = peak_rss_mb(hub.pid)
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=60)
    print()
    print(f"| scenario ({args.clients} clients) | req/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, p50, p99, errors in rows:
        print(f"| {name} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {errors} |")
    print(f"\nhub peak RSS: {rss:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".run" / "fhir-bench")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--fresh", action="store_true", help="seed a new store first")
    parser.add_argument("--only", nargs="*", help="run only these scenarios (by name)")
    args = parser.parse_args()
    if args.fresh and args.data_dir.exists():
        shutil.rmtree(args.data_dir)
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
