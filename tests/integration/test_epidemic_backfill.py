"""The S1 history: ``jianhu report backfill epidemic`` counts and delivers every day of a range,
carries on after an interruption from the last day delivered, sends nothing the second time,
and shows its progress in the ops API (and as log lines when not on a terminal). The
scheduled run sends today and corrects the past days a change touched."""

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from adapters.epidemic.backfill import WORK, backfill
from adapters.epidemic.config import EpidemicConfig
from adapters.epidemic.indicators import catalogue
from adapters.epidemic.plugin import report_indicators
from adapters.epidemic.simulator import PLATFORM, create_app, day_rows
from adapters.framework.backfill import BackfillBusyError, BackfillRange
from adapters.framework.delivery import Courier
from hub.base.hospital_time import HOSPITAL
from hub.base.progress import FINISHED, STOPPED, ProgressReporter
from hub.web.keys import RUNTIME
from store.leases import JobStore
from store.resources import ResourceStore
from tests.integration.fhir_api import Client, start_api
from tests.integration.test_drg_wiring import free_port
from tests.integration.test_epidemic_indicators import swab, visit

ORG = "47000594-X"
FIRST, LAST = date(2026, 9, 1), date(2026, 11, 30)
OPS = {"Authorization": "Bearer ops-key"}


def fever_visits(day: date) -> int:
    return day.day % 3 + 1  # 1, 2 or 3 a day: known, and different from day to day


async def write_season(resources: ResourceStore, first: date, last: date) -> None:
    """Fever-clinic visits and a positive nucleic-acid test on odd days, every day."""
    n = 0
    day = first
    while day <= last:
        for visit_of_day in range(fever_visits(day)):
            n += 1
            start = f"{day.isoformat()}T{9 + visit_of_day:02d}:00:00+08:00"
            end = f"{day.isoformat()}T{9 + visit_of_day:02d}:30:00+08:00"
            await resources.update(visit(n, "AMB", start, end, at="FRMZ"))
        if day.day % 2:
            n += 1
            await resources.update(swab(n, "94500-6", f"{day.isoformat()}T10:00:00+08:00", "阳性"))
        day += timedelta(days=1)


@dataclass
class Hub:
    api: Client
    platform: TestServer
    config: EpidemicConfig

    @property
    def courier(self) -> Courier:
        courier: Courier = self.api.app[RUNTIME].courier
        return courier

    @property
    def resources(self) -> ResourceStore:
        resources: ResourceStore = self.api.app[RUNTIME].store.resources
        return resources

    @property
    def jobs(self) -> JobStore:
        jobs: JobStore = self.api.app[RUNTIME].store.jobs
        return jobs

    def received(self) -> int:
        return int(self.platform.app[PLATFORM].received)

    def live(self) -> dict[str, Any]:
        return day_rows(self.platform.app[PLATFORM])


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    platform = TestServer(create_app(ORG))
    await platform.start_server()
    config = {
        "organisation": ORG,
        "transport": "http",
        "base_url": str(platform.make_url("")),
        "timeout_s": 5,
    }
    api = await start_api(tmp_path, epidemic=config)
    hub = Hub(api, platform, EpidemicConfig.model_validate(config))
    await write_season(hub.resources, FIRST, LAST)
    yield hub
    await api.close()
    await platform.close()


class WorkInterruptedError(Exception):
    pass


class InterruptedAfter(ProgressReporter):
    """Stops the work (as a crash or Ctrl-C would) once ``limit`` days are done."""

    def __init__(self, jobs: JobStore, limit: int) -> None:
        super().__init__(jobs.save_progress, WORK, "days")
        self.limit = limit

    async def advance(self, count: int = 1, checkpoint: str | None = None) -> None:
        await super().advance(count, checkpoint)
        if self._current().done >= self.limit:
            raise WorkInterruptedError


async def run(hub: Hub, reporter: ProgressReporter | None = None) -> str:
    reporter = reporter or ProgressReporter(hub.jobs.save_progress, WORK, "days")
    wanted = BackfillRange(FIRST, LAST)
    tally = await backfill(
        hub.resources, hub.courier, hub.jobs, hub.config, catalogue(), wanted, reporter
    )
    return str(tally)


async def test_the_backfill_resumes_after_an_interruption_and_sends_nothing_twice(
    hub: Hub,
) -> None:
    days = (LAST - FIRST).days + 1
    with pytest.raises(WorkInterruptedError):
        await run(hub, InterruptedAfter(hub.jobs, 40))
    (stopped,) = await hub.jobs.progress(WORK)
    assert (stopped.state, stopped.done, stopped.total) == (STOPPED, 40, days)
    assert stopped.checkpoint == (FIRST + timedelta(days=39)).isoformat()
    assert hub.received() == 40

    assert (
        await run(hub) == f"{days - 40} sent, 0 unchanged, 0 waiting, 0 held"
    )  # after the checkpoint
    (finished,) = await hub.jobs.progress(WORK)
    assert (finished.state, finished.done, finished.resumed_at) == (FINISHED, days, 40)
    assert hub.received() == days  # every day once
    for day in (FIRST, date(2026, 10, 17), LAST):
        row = hub.live()[day.isoformat()]
        assert row["FRMZRC"] == fever_visits(day)
        assert row["HSYXS"] == day.day % 2

    assert await run(hub) == f"0 sent, {days} unchanged, 0 waiting, 0 held"  # idempotent
    assert hub.received() == days


async def test_the_ops_api_shows_the_backfills_progress(hub: Hub) -> None:
    with pytest.raises(WorkInterruptedError):
        await run(hub, InterruptedAfter(hub.jobs, 10))
    shown = await (await hub.api.get(f"/ops/progress/{WORK}", headers=OPS)).json()
    assert (shown["state"], shown["done"], shown["unit"]) == (STOPPED, 10, "days")
    assert shown["percent"] == round(100 * 10 / 91, 1)
    assert "WorkInterruptedError" in shown["detail"]
    await run(hub)
    (listed,) = await (await hub.api.get("/ops/progress", headers=OPS)).json()
    assert (listed["work"], listed["state"], listed["done"]) == (WORK, FINISHED, 91)
    refused = await hub.api.get("/ops/progress", headers={"Authorization": "Bearer emr-key"})
    assert refused.status == 403
    missing = await hub.api.get("/ops/progress/nothing", headers=OPS)
    assert missing.status == 404


async def test_two_backfills_do_not_run_at_once(hub: Hub) -> None:
    assert await hub.jobs.try_lease(
        WORK, "another-process", datetime.now(UTC), timedelta(minutes=5)
    )
    with pytest.raises(BackfillBusyError):
        await run(hub)
    assert hub.received() == 0


@dataclass
class Services:
    resources: ResourceStore
    courier: Courier
    last: datetime | None

    async def last_success(self, job: str) -> datetime | None:
        return self.last


async def test_the_scheduled_run_sends_today_and_corrects_the_days_a_change_touched(
    hub: Hub,
) -> None:
    today = datetime.now(HOSPITAL).date()
    await hub.resources.update(visit(9000, "AMB", datetime.now(HOSPITAL).isoformat(), at="FRMZ"))
    await report_indicators(Services(hub.resources, hub.courier, None))
    assert set(hub.live()) == {today.isoformat()}  # a first run: today only
    assert hub.live()[today.isoformat()]["FRMZRC"] == 1

    await run(hub)  # the history is there
    before = datetime.now(UTC)
    late = swab(9001, "94500-6", "2026-10-04T11:00:00+08:00", "阳性")  # a result filed late
    await hub.resources.update(late)
    sent = hub.received()
    await report_indicators(Services(hub.resources, hub.courier, before))
    assert hub.live()["2026-10-04"]["HSYXS"] == 1  # was 0: corrected
    assert hub.received() == sent + 1  # that day alone (today did not change)


@pytest.fixture
def simulator() -> Iterator[str]:
    port = free_port()
    jianhu = Path(sys.executable).with_name("jianhu")
    process = subprocess.Popen(
        [str(jianhu), "simulate", "epidemic", "--port", str(port), "--org-code", ORG],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_state", timeout=1):
                break
        except OSError:
            assert process.poll() is None, process.stdout.read() if process.stdout else b""
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


async def write_hub_data(folder: Path, first: date, last: date) -> None:
    api = await start_api(folder)  # creates the hub's files in the folder
    await write_season(api.app[RUNTIME].store.resources, first, last)
    await api.close()


def test_the_backfill_command_against_the_simulator(tmp_path: Path, simulator: str) -> None:
    """As an operator runs it: the hub's data folder, the environment, the two commands."""
    asyncio.run(write_hub_data(tmp_path, date(2026, 11, 1), date(2026, 11, 30)))
    env = {
        **os.environ,
        "JIANHU_DATA_DIR": str(tmp_path),
        "JIANHU_EPIDEMIC__ORGANISATION": ORG,
        "JIANHU_EPIDEMIC__TRANSPORT": "http",
        "JIANHU_EPIDEMIC__BASE_URL": simulator,
    }
    jianhu = str(Path(sys.executable).with_name("jianhu"))
    command = [jianhu, "report", "backfill", "epidemic", "--since", "2026-11-01"]
    done = subprocess.run(
        [*command, "--until", "2026-11-30"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == "30 days 2026-11-01..2026-11-30: 30 sent, 0 unchanged, 0 waiting, 0 held"
    )
    events = [orjson.loads(line)["event"] for line in done.stderr.splitlines() if line]
    assert events[0] == "work-started"
    assert events[-1] == "work-finished"
    with urllib.request.urlopen(f"{simulator}/_state") as answer:
        state = orjson.loads(answer.read())
    (row,) = [r for r in state["tables"]["TB_YQFK_MRZB"] if r["YWRQ"] == "2026-11-17"]
    assert row["FRMZRC"] == fever_visits(date(2026, 11, 17))

    ahead = subprocess.run(
        [*command, "--until", "2099-01-01"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ahead.returncode == 2
    assert "ends yesterday at the latest" in ahead.stderr


async def test_the_running_hub_is_what_the_scheduled_run_uses(hub: Hub) -> None:
    """The runtime itself serves the job (its store, its courier, its job history)."""
    today = datetime.now(HOSPITAL).date()
    await hub.resources.update(visit(9100, "EMER", datetime.now(HOSPITAL).isoformat()))
    await report_indicators(hub.api.app[RUNTIME])
    assert hub.live()[today.isoformat()]["JZRC"] == 1
