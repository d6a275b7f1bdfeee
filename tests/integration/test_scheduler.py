"""The scheduler on the real job stores: two hub processes (here two schedulers, each on its own
connection to the same SQLite file, or its own MongoDB client) run a job once per due time; a
failed run is recorded and tried again at the next due time; a dead holder's lease expires; a
catching-up job runs once after downtime. The clock is a test's own and only moves when told.

MongoDB runs when a server is reachable; the in-memory stand-in (mongomock) checks the MongoDB
filters and updates everywhere else."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.base.hospital_time import HOSPITAL
from hub.schedule import parse_schedule
from hub.scheduler import Job, Scheduler
from store.leases import FAILED, HISTORY, OK, JobStore
from store.sqlite_file import SqliteFile
from store.sqlite_jobs import SqliteJobs
from tests.stores import BACKENDS, mongo_url

JOB = "epidemic-upload"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=HOSPITAL)


class Clock:
    def __init__(self, start: str) -> None:
        self.moment = local(start)

    def __call__(self) -> datetime:
        return self.moment

    def at(self, text: str) -> None:
        self.moment = local(text)


@asynccontextmanager
async def sqlite_pair(tmp_path: Path) -> AsyncIterator[tuple[JobStore, JobStore]]:
    """Two writers of one file, as two hub processes have."""
    files = [SqliteFile(tmp_path / "jianhu.sqlite3") for _ in range(2)]
    try:
        for file in files:
            await file.open()
        first, second = (SqliteJobs(f) for f in files)
        for jobs in (first, second):
            await jobs.setup()
        yield first, second
    finally:
        for file in files:
            await file.close()


@asynccontextmanager
async def mongo_pair() -> AsyncIterator[tuple[JobStore, JobStore]]:
    url = mongo_url()
    if url is None:
        pytest.skip("no MongoDB server: set JIANHU_TEST_MONGO_URL or run Docker")
    from store.mongo import MongoStore
    from store.mongo_jobs import MongoJobs

    database = f"jianhu_test_{uuid.uuid4().hex[:12]}"
    stores = [MongoStore(url, database=database) for _ in range(2)]
    try:
        for store in stores:
            await store.ping()
        first, second = (MongoJobs(store.db["jobs"]) for store in stores)
        yield first, second
    finally:
        await stores[0].db.client.drop_database(database)
        for store in stores:
            await store.close()


class AsyncCollection:
    """mongomock's collection behind the awaitable methods MongoJobs calls."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._collection, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


def mongomock_pair() -> tuple[JobStore, JobStore]:
    import mongomock

    from store.mongo_jobs import MongoJobs

    jobs: Any = AsyncCollection(mongomock.MongoClient().db.jobs)
    return MongoJobs(jobs), MongoJobs(jobs)


@pytest.fixture(params=[*BACKENDS, "mongomock"])
async def stores(request: Any, tmp_path: Path) -> AsyncIterator[tuple[JobStore, JobStore]]:
    if request.param == "mongomock":
        yield mongomock_pair()
        return
    pair = sqlite_pair(tmp_path) if request.param == "sqlite" else mongo_pair()
    async with pair as opened:
        yield opened


class Upload:
    """The job's work: counts its runs, fails when told, may take a while."""

    def __init__(self, pause_s: float = 0.0, failures: int = 0) -> None:
        self.pause_s, self.failures, self.calls = pause_s, failures, 0
        self.started = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        self.started.set()
        if self.pause_s:
            await asyncio.sleep(self.pause_s)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the CDC platform refused 330602199001011234")


def upload_job(
    work: Callable[[], Awaitable[None]], catch_up: bool = False, ttl_s: float = 30
) -> Job:
    return Job(
        JOB,
        parse_schedule("*/15 * * * *"),
        work,
        lease_ttl=timedelta(seconds=ttl_s),
        catch_up=catch_up,
    )


async def tick(*schedulers: Scheduler) -> None:
    """Every scheduler looks at once (each decides before any run starts), then runs end."""
    await asyncio.gather(*(s.tick() for s in schedulers))
    await asyncio.gather(*(s.idle() for s in schedulers))


async def test_a_lease_is_exclusive_until_released_or_expired(
    stores: tuple[JobStore, JobStore],
) -> None:
    a, b = stores
    now, ttl = local("2024-05-01 10:15"), timedelta(seconds=30)
    assert await a.try_lease(JOB, "hub-a", now, ttl)
    assert not await b.try_lease(JOB, "hub-b", now, ttl)
    assert await a.try_lease(JOB, "hub-a", now + timedelta(seconds=20), ttl)  # renewed
    assert not await b.try_lease(JOB, "hub-b", now + timedelta(seconds=40), ttl)
    await b.release(JOB, "hub-b")  # not b's: nothing happens
    assert not await b.try_lease(JOB, "hub-b", now + timedelta(seconds=40), ttl)
    assert await b.try_lease(JOB, "hub-b", now + timedelta(seconds=50), ttl)  # a's expired
    assert not await a.try_lease(JOB, "hub-a", now + timedelta(seconds=51), ttl)
    await b.release(JOB, "hub-b")
    assert await a.try_lease(JOB, "hub-a", now + timedelta(seconds=52), ttl)
    assert await b.try_lease("reconciliation", "hub-b", now, ttl)  # leases are per job


async def test_runs_are_kept_latest_first_and_trimmed(stores: tuple[JobStore, JobStore]) -> None:
    a, b = stores
    assert await a.last_run(JOB) is None
    assert await a.runs(JOB) == []
    start = local("2024-05-01 00:00")
    for n in range(HISTORY + 5):
        started = start + timedelta(minutes=15 * n)
        outcome, error = (FAILED, "ConnectionError: refused") if n % 2 else (OK, "")
        await a.record_run(JOB, "hub-a", started, started + timedelta(seconds=2), outcome, error)
    latest = start + timedelta(minutes=15 * (HISTORY + 4))
    assert await b.last_run(JOB) == latest  # the other process sees it
    runs = await b.runs(JOB)
    assert len(runs) == HISTORY
    assert runs[0].started == latest
    assert runs[0].finished == latest + timedelta(seconds=2)
    assert [r.started for r in runs] == sorted((r.started for r in runs), reverse=True)
    assert (runs[0].holder, runs[0].outcome, runs[0].error) == ("hub-a", OK, "")
    assert (runs[1].outcome, runs[1].error) == (FAILED, "ConnectionError: refused")
    assert len(await b.runs(JOB, limit=3)) == 3


@pytest.mark.parametrize("pause_s", [0.0, 0.05], ids=["released-before-the-other-looks", "slow"])
async def test_two_processes_run_each_due_time_once(
    stores: tuple[JobStore, JobStore], pause_s: float
) -> None:
    clock = Clock("2024-05-01 10:07")
    work = Upload(pause_s)
    a = Scheduler(stores[0], [upload_job(work)], holder="hub-a", now=clock)
    b = Scheduler(stores[1], [upload_job(work)], holder="hub-b", now=clock)
    await tick(a, b)
    assert work.calls == 0
    for due in ("10:15", "10:30", "10:45"):
        clock.at(f"2024-05-01 {due}:00.2")
        await tick(a, b)
        await tick(b, a)  # the one that did not run looks again: the due time is done
    assert work.calls == 3
    runs = await stores[1].runs(JOB)
    assert [r.started for r in runs] == [
        local(f"2024-05-01 {t}:00.2") for t in ("10:45", "10:30", "10:15")
    ]
    assert {r.outcome for r in runs} == {OK}


async def test_a_failed_run_is_recorded_and_retried_at_the_next_due_time(
    stores: tuple[JobStore, JobStore],
) -> None:
    clock = Clock("2024-05-01 10:14:59")
    work = Upload(failures=1)
    scheduler = Scheduler(stores[0], [upload_job(work)], holder="hub-a", now=clock)
    scheduler.start()  # the background loop this time
    try:
        clock.at("2024-05-01 10:15")
        await scheduler.look_now()
        runs = await stores[1].runs(JOB)
        assert (runs[0].outcome, runs[0].holder) == (FAILED, "hub-a")
        # the class and message, the ID-card number masked
        assert runs[0].error == "ConnectionError: the CDC platform refused 330602********1234"
        clock.at("2024-05-01 10:20")
        await scheduler.look_now()
        assert work.calls == 1  # not retried in a loop
        clock.at("2024-05-01 10:30")
        await scheduler.look_now()
        runs = await stores[1].runs(JOB)
        assert len(runs) == 2
        assert runs[0].outcome == OK
        assert runs[0].started == local("2024-05-01 10:30")
    finally:
        await scheduler.stop()
    assert work.calls == 2


async def test_a_dead_holders_lease_expires_and_another_takes_over(
    stores: tuple[JobStore, JobStore],
) -> None:
    clock = Clock("2024-05-01 10:00")
    work = Upload()
    b = Scheduler(stores[1], [upload_job(work, ttl_s=30)], holder="hub-b", now=clock)
    # hub-a takes the lease for 10:15 and dies: it never records a run nor releases
    assert await stores[0].try_lease(JOB, "hub-a", local("2024-05-01 10:15"), timedelta(seconds=30))
    for moment in ("10:15:00", "10:15:12", "10:15:29"):
        clock.at(f"2024-05-01 {moment}")
        await tick(b)
        assert work.calls == 0, moment
    clock.at("2024-05-01 10:15:40")  # the lease expired at 10:15:30
    await tick(b)
    assert work.calls == 1
    assert (await stores[0].runs(JOB))[0].holder == "hub-b"
    assert await stores[0].try_lease(JOB, "hub-a", clock(), timedelta(seconds=30))  # released


async def test_catching_up_after_downtime_runs_once(stores: tuple[JobStore, JobStore]) -> None:
    clock = Clock("2024-05-01 09:55")
    before = Upload()
    first = Scheduler(stores[0], [upload_job(before, catch_up=True)], holder="hub-a", now=clock)
    clock.at("2024-05-01 10:00:01")
    await tick(first)
    assert before.calls == 1
    # the hub is down from 10:01 to 13:07: twelve due times are missed
    clock.at("2024-05-01 13:07")
    caught_up, skipped = Upload(), Upload()
    jobs = [
        upload_job(caught_up, catch_up=True),
        Job("task-poll", parse_schedule("*/15 * * * *"), skipped),
    ]
    again = Scheduler(stores[1], jobs, holder="hub-b", now=clock)
    await tick(again)
    assert caught_up.calls == 1  # once, not twelve times
    assert skipped.calls == 0  # it did not run before this start: nothing to make up
    clock.at("2024-05-01 13:08")
    await tick(again)
    assert caught_up.calls == 1
    clock.at("2024-05-01 13:15")
    await tick(again)
    assert (caught_up.calls, skipped.calls) == (2, 1)


async def test_a_job_that_missed_its_time_does_not_catch_up(
    stores: tuple[JobStore, JobStore],
) -> None:
    clock = Clock("2024-05-01 10:00")
    await stores[0].record_run(JOB, "hub-a", clock(), clock(), OK)
    clock.at("2024-05-01 13:07")
    work = Upload()
    scheduler = Scheduler(stores[1], [upload_job(work)], holder="hub-b", now=clock)
    await tick(scheduler)
    assert work.calls == 0
    clock.at("2024-05-01 13:15:20")
    await tick(scheduler)
    assert work.calls == 1


async def test_stop_cancels_a_run_without_recording_it(stores: tuple[JobStore, JobStore]) -> None:
    clock = Clock("2024-05-01 10:14")
    work = Upload(pause_s=30)
    scheduler = Scheduler(stores[0], [upload_job(work)], holder="hub-a", now=clock)
    clock.at("2024-05-01 10:15")
    await scheduler.tick()
    await asyncio.wait_for(work.started.wait(), 5)  # the run is under way
    assert work.calls == 1
    await scheduler.stop()
    assert await stores[1].runs(JOB) == []  # its due time is still open to another process
    assert await stores[1].try_lease(JOB, "hub-b", clock(), timedelta(seconds=30))
