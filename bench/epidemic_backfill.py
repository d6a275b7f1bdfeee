"""S1 benchmark: the back-fill of every day from 2020-01-01 to 2026-12-03 (2,529 days) from a
SQLite clinical store seeded by ``bench/epidemic_day.py --store PATH``, delivered over HTTP to
the strict platform simulator on a loopback socket through the delivery ledger (kept in a
separate file, so the run can be repeated). Prints the whole time, the days a second, and where
the time went (counting on the store against delivering). Not a test: it prints figures.

    python bench/epidemic_day.py --days 485 --store /tmp/s1.sqlite3   # once: ~5 M resources
    python bench/epidemic_backfill.py --store /tmp/s1.sqlite3 [--since 2020-01-01]
"""

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.epidemic.backfill import WORK, backfill
from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.daily import range_values
from adapters.epidemic.indicators import catalogue
from adapters.epidemic.platform import ADAPTER, build_adapter
from adapters.epidemic.simulator import PLATFORM, create_app
from adapters.framework.backfill import BackfillRange, months
from adapters.framework.delivery import Courier
from hub.base.progress import ProgressReporter
from store.sqlite import SqliteStore

ORG = "47000594-X"
LAST = date(2026, 12, 3)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--since", type=date.fromisoformat, default=date(2020, 1, 1))
    args = parser.parse_args()
    if not args.store.exists():
        sys.exit(f"no store at {args.store}: seed it with bench/epidemic_day.py --store")
    logging.disable(logging.WARNING)  # the delivery lines of 2,500 days
    platform = TestServer(create_app(ORG))
    await platform.start_server()
    config = EpidemicConfig(organisation=ORG, transport="http", base_url=str(platform.make_url("")))
    clinical = SqliteStore(args.store)
    await clinical.open()
    with tempfile.TemporaryDirectory() as folder:
        books = SqliteStore(Path(folder) / "ledger.sqlite3")
        await books.open()
        courier = Courier(books.ledger, {ADAPTER: build_adapter(config)})
        wanted = BackfillRange(args.since, LAST)
        progress = ProgressReporter(books.jobs.save_progress, WORK, "days")
        began = time.perf_counter()
        tally = await backfill(
            clinical.resources, courier, books.jobs, config, catalogue(), wanted, progress
        )
        took = time.perf_counter() - began
        received = platform.app[PLATFORM].received
        await courier.adapters[ADAPTER].transport.close()
        await books.close()
        # the counting alone, month by month as the back-fill does it, for where the time goes
        began = time.perf_counter()
        for first, last in months(args.since, LAST):
            await range_values(clinical.resources, catalogue(), first, last)
        counting = time.perf_counter() - began
    await clinical.close()
    await platform.close()
    print(
        f"back-fill {wanted.detail}: {wanted.days:,} days in {took:.1f} s "
        f"({wanted.days / took:.1f} days/s); {tally}; the platform received {received:,} rows"
    )
    print(
        f"  of which counting on the store (timed again alone) {counting:.1f} s, "
        f"delivering through the ledger and the platform {took - counting:.1f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
