"""Outbound delivery benchmark: front pages (住院病案首页) built and delivered to the DRG
platform simulator, through the delivery ledger, per second; and the ledger's cost per
delivery, against the same requests sent without it. The simulator runs in its own process
(``jianhu simulate drg``), the ledger is the embedded SQLite store. Not a test: it prints
figures.

    python bench/adapters.py [--pages 2000] [--concurrency 16]
"""

import argparse
import asyncio
import copy
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.drg import interfaces as drg
from adapters.drg.config import DrgConfig
from adapters.drg.documents import prepare
from adapters.drg.interfaces import build_adapter, business_key
from adapters.drg.stay import Stay
from adapters.framework.delivery import Courier
from fhir_profiles.identifiers import INPATIENT_NUMBER, MEDICAL_RECORD_NUMBER
from hub.base.json import Json
from store.ledger import ACCEPTED
from store.sqlite import SqliteStore
from tests.unit import test_drg_documents as corpus

APP_ID, ORG_CODE = "BENCH-APP", "BENCH-ORG"


def stay_template() -> Stay:
    """A pneumonia stay as the HIS's feeds leave it in the store: admission, a day's charges,
    the discharge, through the hub's own HL7 mappings."""
    held = corpus.resources(
        corpus.text_of(corpus.ADMISSION), corpus.text_of(corpus.CHARGES), corpus.discharge_message()
    )

    def of(kind: str) -> list[Json]:
        return [r for r in held if r["resourceType"] == kind]

    return Stay(
        patient=of("Patient")[0],
        encounter=of("Encounter")[0],
        conditions=of("Condition"),
        charge_items=of("ChargeItem"),
        coverage=next(iter(of("Coverage")), None),
    )


def front_page(template: Stay, number: int) -> Json:
    """The template stay as another patient's (its own 病案号), built and checked."""
    stay = copy.deepcopy(template)
    for identifier in stay.patient.get("identifier", []):
        if identifier.get("system") in (MEDICAL_RECORD_NUMBER, INPATIENT_NUMBER):
            identifier["value"] = f"B{number:07d}"
    prepared = prepare(stay)
    if not prepared.sendable:
        raise SystemExit(f"the template stay does not pass the checks: {prepared.problems}")
    page: Json = prepared.front_page
    page["MAIN_DATA"]["HOS_ID"] = ORG_CODE
    return page


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{url}/_state"):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise SystemExit("the simulator did not start")


async def in_batches(count: int, concurrency: int, work: Callable[[int], Awaitable[Any]]) -> float:
    """Seconds to run ``work(n)`` for n in range(count), ``concurrency`` at a time."""
    began = time.perf_counter()
    for start in range(0, count, concurrency):
        await asyncio.gather(*(work(n) for n in range(start, min(count, start + concurrency))))
    return time.perf_counter() - began


async def main_async(args: argparse.Namespace, url: str) -> None:
    store = SqliteStore(Path(tempfile.mkdtemp(prefix="jianhu-adapters-bench-")) / "j.sqlite3")
    try:
        await wait_up(url)
        await store.open()
        adapter = build_adapter(DrgConfig(base_url=url, app_id=APP_ID, org_code=ORG_CODE))
        delivery = Courier(store.ledger, {"drg": adapter})
        await delivery.submit("drg", drg.ORG_REGIST, ORG_CODE, {"ORG_NAME": "绍兴市某人民医院"})
        template = stay_template()
        rates, raw_rates = [], []
        for run in range(args.runs):
            offset = run * args.pages * 2

            async def through_ledger(n: int, offset: int = offset) -> None:
                page = front_page(template, offset + n)
                key = business_key(page["MAIN_DATA"]["BAH"], 1)
                done = await delivery.submit("drg", drg.FRONT_PAGE, key, page)
                if done.status != ACCEPTED:
                    raise SystemExit(f"not accepted: {done.error}")

            async def without_ledger(n: int, offset: int = offset) -> None:
                request = adapter.interface(drg.FRONT_PAGE).request(
                    front_page(template, offset + args.pages + n)
                )
                response = await adapter.transport.send(request)
                if response.status != 200:
                    raise SystemExit(f"HTTP {response.status}")

            ledger_s = await in_batches(args.pages, args.concurrency, through_ledger)
            raw_s = await in_batches(args.pages, args.concurrency, without_ledger)
            rates.append(args.pages / ledger_s)
            raw_rates.append(args.pages / raw_s)
            print(
                f"run {run + 1}: {rates[-1]:,.0f}/s with the ledger, {raw_rates[-1]:,.0f}/s without"
            )
        await adapter.transport.close()
    finally:
        await store.close()
    rate, raw = statistics.median(rates), statistics.median(raw_rates)
    cost_ms = (1 / rate - 1 / raw) * 1000
    print(f"\n{args.pages:,} front pages × {args.runs} runs, {args.concurrency} at a time\n")
    print("| figure | value |")
    print("|---|---:|")
    print(f"| front pages built and delivered through the ledger, per second | {rate:,.0f} |")
    print(f"| the same requests sent without the ledger, per second | {raw:,.0f} |")
    print(f"| the ledger's cost per delivery (record, claim, attempt), ms | {cost_ms:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    jianhu = Path(sys.executable).with_name("jianhu")
    command = [str(jianhu), "simulate", "drg", "--port", str(port)]
    simulator = subprocess.Popen(
        [*command, "--app-id", APP_ID, "--org-code", ORG_CODE], stdout=subprocess.DEVNULL
    )
    try:
        uvloop.run(main_async(args, f"http://127.0.0.1:{port}"))
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


if __name__ == "__main__":
    main()
