"""The threads that do a SQLite file's work off the event loop.

``SqliteWriter`` owns the file's write connection in a thread of its own. Callers hand it jobs
(functions of the connection); it groups the jobs waiting for it into one transaction and one
COMMIT, runs each in a SAVEPOINT so a failing job rolls back only itself, waits for other
processes' locks itself, and resolves each caller's future on its event loop once the COMMIT is
on disk: a 201 or an ACK still waits for durability, but no SQLite write, COMMIT, fsync or lock
wait ever runs on the loop. Group commit comes for free: while one COMMIT syncs, the next jobs
queue up and share the following one.

``SqliteReaders`` is a small pool of threads with a read connection each, for reads that can
take milliseconds (search pages, history, rebuilds); point reads stay on the loop's own read
connection, which never waits in WAL mode.

Both connections are made in their own threads with SQLite's same-thread check on, so a
write from the loop thread fails at once (``sqlite3.ProgrammingError``) instead of blocking it.
"""

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hub.base.errors import StoreError
from hub.base.logs import log_event

log = logging.getLogger(__name__)
T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]

# A group closes after this many jobs or this much work, so one caller's wait stays bounded.
GROUP_MAX_JOBS = 2000
GROUP_MAX_S = 0.05
BUSY_TIMEOUT_MS = 30_000  # another process's transaction: the writer thread waits, not the loop
CACHE_KIB = 64 * 1024
CATCH_UP_S = 1.0  # how often the writer backfills the WAL's last frames after a commit


@dataclass(eq=False)
class _Pending:
    job: Job[Any]
    loop: asyncio.AbstractEventLoop | None  # None: nobody waits (an ack, a status mark)
    future: "asyncio.Future[Any] | None"
    durable: bool = True  # resolve after the COMMIT; False: as soon as the job ran
    alone: bool = False  # outside any group transaction (schema changes)
    result: Any = None
    error: BaseException | None = field(default=None)


_STOP = object()


def connect(path: Path, synchronous: str = "FULL", same_thread: bool = True) -> sqlite3.Connection:
    """The writer's connection (it sets the file to WAL)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=same_thread)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")  # FULL: an ACK or a 201 survives power loss
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # index upper levels stay hot
    return db


def connect_reader(path: Path, same_thread: bool = True) -> sqlite3.Connection:
    """A read-only connection: whatever runs on it, it cannot write (nor wait for a lock)."""
    db = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=same_thread
    )
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return db


class SqliteWriter:
    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._jobs: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._listeners: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
        self._caught_up_at = 0.0
        self._discarding = False  # closing as a crash would: nothing more is committed

    def start(self) -> None:
        opened: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._main, args=(opened,), name=f"sqlite-writer:{self.path.name}", daemon=True
        )
        self._thread.start()
        error = opened.get()
        if error is not None:
            raise StoreError(f"cannot open {self.path}: {error}") from error

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Called on the caller's loop after every COMMIT (the outbox relay's wake-up)."""
        self._listeners.append((asyncio.get_running_loop(), listener))

    async def run(self, job: Job[T], durable: bool = True) -> T:
        """Run ``job(connection)`` in the writer thread, within the next group; returns its
        result once the group's COMMIT is durable (or, ``durable=False``, once it ran: for
        work whose loss in a crash only means doing it again)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(_Pending(job, loop, future, durable))
        return await future

    async def run_alone(self, job: Job[T]) -> T:
        """Run ``job`` outside any transaction (schema changes, which commit themselves)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(_Pending(job, loop, future, alone=True))
        return await future

    def submit(self, job: Job[Any]) -> None:
        """Run ``job`` in the next group without waiting; a failure is logged."""
        self._put(_Pending(job, None, None))

    async def close(self, discard: bool = False) -> None:
        """Run what is queued and commit it, then close the connection; ``discard``: as a
        crash would, leave what is queued or uncommitted undone."""
        if self._thread is None:
            return
        self._discarding = discard
        self._jobs.put(_STOP)
        thread, self._thread = self._thread, None
        await asyncio.to_thread(thread.join)

    def _put(self, pending: _Pending) -> None:
        if self._thread is None:
            raise StoreError(f"the writer of {self.path.name} is not running")
        self._jobs.put(pending)

    # --- the writer thread ---
    def _main(self, opened: "queue.SimpleQueue[BaseException | None]") -> None:
        try:
            db = connect(self.path, self.synchronous)
            db.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does it
            db.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
        except sqlite3.Error as exc:
            opened.put(exc)
            return
        opened.put(None)
        try:
            self._serve(db)
        finally:
            db.close()

    def _serve(self, db: sqlite3.Connection) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                self._refuse_queued()
                return
            assert isinstance(first, _Pending)
            if first.alone:
                self._run_alone(db, first)
                continue
            stop = self._run_group(db, first)
            if stop:
                self._refuse_queued()
                return

    def _refuse_queued(self) -> None:
        """What a discarding close left in the queue never runs; its callers hear so."""
        left: list[_Pending] = []
        while True:
            try:
                pending = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(pending, _Pending):
                left.append(pending)
        _fail(left, "the store was closed before this write ran")

    def _run_alone(self, db: sqlite3.Connection, pending: _Pending) -> None:
        try:
            pending.result = detached(pending.job(db))
        except BaseException as exc:  # the caller gets it on its loop
            pending.error = exc
        _resolve([pending])

    def _run_group(self, db: sqlite3.Connection, first: _Pending) -> bool:
        """One transaction: ``first`` and whatever queued behind it; True when told to stop."""
        group, stop = [first], False
        started = time.perf_counter()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            first.error = StoreError(f"the store could not start a transaction: {exc}")
            _resolve(group)
            return False
        _run_job(db, first, self._discarding)
        while len(group) < GROUP_MAX_JOBS and time.perf_counter() - started < GROUP_MAX_S:
            try:
                pending = self._jobs.get_nowait()
            except queue.Empty:
                break
            if pending is _STOP:
                stop = True
                break
            assert isinstance(pending, _Pending)
            if pending.alone:
                self._jobs.put(pending)  # after this group; rare (start-up only)
                break
            group.append(pending)
            _run_job(db, pending, self._discarding)
        _resolve([p for p in group if not p.durable])  # they need not wait for the COMMIT
        if self._discarding:
            db.execute("ROLLBACK")
            _fail([p for p in group if p.durable], "the store was closed before this committed")
            return True
        self._commit(db, group)
        _resolve([p for p in group if p.durable])
        self._after_commit(db)
        return stop

    def _commit(self, db: sqlite3.Connection, group: list[_Pending]) -> None:
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            failure = StoreError(f"the store could not commit: {exc}")
            for pending in group:
                if pending.error is None:
                    pending.error, pending.result = failure, None
            log_event(log, "commit_failed", logging.ERROR, file=self.path.name, error=str(exc))

    def _after_commit(self, db: sqlite3.Connection) -> None:
        for loop, listener in self._listeners:
            _call_soon(loop, listener)
        now = time.monotonic()
        if now - self._caught_up_at > CATCH_UP_S:
            # The checkpoint thread copies the bulk of the WAL while writes go on, but it can
            # never finish while this connection keeps appending, and SQLite restarts the WAL
            # only after a complete checkpoint: right after a commit, this connection backfills
            # the last few frames, so the WAL is reused instead of growing without bound.
            self._caught_up_at = now
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log_event(log, "checkpoint_failed", file=self.path.name, error=str(exc))


def _run_job(db: sqlite3.Connection, pending: _Pending, discarding: bool = False) -> None:
    if discarding:
        pending.error = StoreError("the store was closed before this write ran")
        return
    if pending.future is not None and pending.future.cancelled():
        return  # its caller gave up before it ran: it never happened
    db.execute("SAVEPOINT job")
    try:
        pending.result = detached(pending.job(db))
    except BaseException as exc:
        db.execute("ROLLBACK TO job")
        pending.error = exc
        if pending.future is None:
            log_event(log, "write_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
    db.execute("RELEASE job")


def detached(result: Any) -> Any:
    """A job's result crosses to the loop's thread: never a cursor of this connection (a
    statement finalised from another thread is SQLite API misuse)."""
    if isinstance(result, sqlite3.Cursor):
        result.close()
        return None
    return result


def _fail(pending: list[_Pending], reason: str) -> None:
    for item in pending:
        if item.error is None:
            item.error, item.result = StoreError(reason), None
    _resolve(pending)


def _resolve(done: list[_Pending]) -> None:
    """Hand results to their loops: one wake-up per loop, however many jobs."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
    for pending in done:
        if pending.loop is not None:
            by_loop.setdefault(pending.loop, []).append(pending)
    for loop, items in by_loop.items():
        _call_soon(loop, functools.partial(_settle, items))


def _settle(items: list[_Pending]) -> None:
    for pending in items:
        future = pending.future
        if future is None or future.done():
            continue
        if pending.error is not None:
            future.set_exception(pending.error)
        else:
            future.set_result(pending.result)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(callback)


class SqliteReaders:
    """Threads with a read connection each, for reads that may take a while."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"sqlite-read:{path.name}")

    async def run(self, job: Job[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, job)

    def _run(self, job: Job[T]) -> T:
        db = getattr(self._local, "db", None)
        if db is None:  # closed by ``close`` from another thread, once the pool has stopped
            db = self._local.db = connect_reader(self.path, same_thread=False)
            with self._lock:
                self._connections.append(db)
        result: T = detached(job(db))
        return result

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, True)
        with self._lock:
            for db in self._connections:
                db.close()  # the pool's threads have ended: nobody uses them now
            self._connections.clear()
