"""The embedded bus: RabbitMQ's semantics in one process, kept durable in a SQLite file.

For the embedded default and for development. Every write goes through the file's writer
thread (``hub.base.sqlite_writer``): a publish returns after its rows are committed (the
"confirm"); a delivery is acked by deleting its row after the handler returns, without waiting
for that commit (a lost ack only means one more delivery). Rows left ``inflight`` by a crash
are delivered again at the next start, marked redelivered, and count towards the delivery limit
exactly as RabbitMQ's quorum queues count returns.

``settled`` waits, without polling, until nothing due is left to handle: what tests (and a
one-shot command) await instead of sleeping. Its clock is injectable: a test moves it past a
retry's delay and the retry is due at once.
"""

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hub.base.envelope import Envelope
from hub.base.errors import BusError, TopologyError, UnroutableError
from hub.base.logs import log_event
from hub.base.metrics import BusMetrics
from hub.base.sqlite_writer import SqliteWriter, connect_reader
from hub.base.tasks import wait_event
from hub.bus import topology as topo
from hub.bus.base import Bus, DeadLetter, Delivery, Handler, PlainMessage, QueueDepth
from hub.bus.outcome import Disposition, Verdict
from hub.bus.settings import BusSettings

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_queue (
    name TEXT PRIMARY KEY, exchange TEXT NOT NULL, bindings BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS bus_message (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    envelope BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'ready',          -- ready | inflight | dead
    attempt INTEGER NOT NULL DEFAULT 1,
    deliveries INTEGER NOT NULL DEFAULT 0,        -- handed out without being settled
    available_at REAL NOT NULL DEFAULT 0,
    error_class TEXT, error TEXT, dead_at REAL
);
CREATE INDEX IF NOT EXISTS ix_bus_message_queue ON bus_message (queue, state, seq);
CREATE INDEX IF NOT EXISTS ix_bus_message_due ON bus_message (queue, state, available_at);
"""
KNOWN_EXCHANGES = frozenset(topo.TOPIC_EXCHANGES)
MAX_IDLE_WAIT_S = 1.0


class EmbeddedBus(Bus):
    def __init__(
        self,
        path: Path | str,
        settings: BusSettings,
        metrics: BusMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, metrics)
        self._path = str(path)
        self._clock = clock
        self._writer: SqliteWriter | None = None
        self._read: sqlite3.Connection | None = None
        self._wake: dict[str, asyncio.Event] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        # set whenever a delivery ends or a message arrives: what ``settled`` waits on
        self._activity = asyncio.Event()

    # --- lifecycle ---
    async def start(self) -> None:
        path = Path(self._path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = SqliteWriter(path, self.settings.embedded_synchronous)
        self._writer.start()
        await self._writer.run_alone(lambda db: db.executescript(SCHEMA))
        # a crash left these handed out: deliver them again
        await self.writer.run(
            lambda db: db.execute("UPDATE bus_message SET state='ready' WHERE state='inflight'")
        )
        self._read = connect_reader(path)
        for name, exchange, bindings in self.db.execute("SELECT * FROM bus_queue"):
            self.specs[name] = topo.QueueSpec(name, exchange, tuple(orjson.loads(bindings)))
        self._stopping = False

    async def close(self, grace_s: float | None = None) -> None:
        await self.stop_consuming(self.settings.handler_timeout_s if grace_s is None else grace_s)
        await self._close_files(discard=False)  # the last acks are committed first
        await self._inflight.cancel()  # what is still running stays in flight: a redelivery

    async def abort(self) -> None:
        """Stop as a crash would: handlers are cut off and nothing they held is settled."""
        self._stopping = True
        await self._close_files(discard=True)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        await self._inflight.cancel()

    async def _close_files(self, discard: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.close(discard=discard)
        if self._read is not None:
            self._read.close()
            self._read = None

    async def ping(self) -> None:
        try:
            self.db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise BusError(f"embedded bus database: {exc}") from exc

    @property
    def db(self) -> sqlite3.Connection:
        """The loop's read connection (point reads and small lists)."""
        if self._read is None:
            raise BusError("the bus is not started")
        return self._read

    @property
    def writer(self) -> SqliteWriter:
        if self._writer is None:
            raise BusError("the bus is not started")
        return self._writer

    # --- topology and publishing ---
    async def declare(self, spec: topo.QueueSpec) -> None:
        if spec.exchange not in KNOWN_EXCHANGES:
            raise TopologyError(f"exchange {spec.exchange!r} does not exist")
        row = (spec.name, spec.exchange, orjson.dumps(list(spec.bindings)))
        await self.writer.run(
            lambda db: db.execute("INSERT OR REPLACE INTO bus_queue VALUES (?, ?, ?)", row)
        )
        self._remember(spec)

    async def publish(
        self, envelope: Envelope, routing_key: str, exchange: str = topo.INBOUND
    ) -> None:
        await self.publish_many([(envelope, routing_key)], exchange)

    async def reply(self, reply_to: str, answer: PlainMessage) -> None:
        # only a process holding this bus reaches it, and no outside system publishes here
        raise UnroutableError(f"reply to {reply_to}: the embedded bus has no outside systems")

    async def publish_plain(self, exchange: str, routing_key: str, message: PlainMessage) -> None:
        raise UnroutableError(f"{exchange}/{routing_key}: the embedded bus has no outside systems")

    async def publish_many(
        self, items: Sequence[tuple[Envelope, str]], exchange: str = topo.INBOUND
    ) -> None:
        if exchange not in KNOWN_EXCHANGES:
            raise TopologyError(f"exchange {exchange!r} does not exist")
        rows: list[tuple[str, str, str, bytes]] = []
        for envelope, key in items:
            queues = self.queues_for(exchange, key)
            if not queues:
                raise UnroutableError(f"no queue is bound for {exchange}/{key}")
            body = envelope.to_json()
            rows.extend((queue, key, envelope.id, body) for queue in queues)
        await self.writer.run(  # returns once committed: the publish is confirmed
            lambda db: db.executemany(
                "INSERT INTO bus_message (queue, routing_key, message_id, envelope) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        )
        for envelope, key in items:
            self._count_published(exchange, key, envelope)
        for queue in {row[0] for row in rows}:
            self._wake_up(queue)

    def _wake_up(self, queue: str) -> None:
        self._activity.set()
        if queue in self._wake:
            self._wake[queue].set()

    # --- settling ---
    async def settled(self, timeout_s: float = 30.0) -> None:
        """Return once every consumed queue has nothing due and nothing in flight (what is
        due later, a retry's next attempt, stays); ``TimeoutError`` after ``timeout_s``.
        Each look wakes the consumers, so a message made due by a moved clock is taken."""
        async with asyncio.timeout(timeout_s):
            while True:
                self._activity.clear()
                for wake in self._wake.values():
                    wake.set()
                if await self._is_settled():
                    return
                await self._activity.wait()

    async def settled_now(self) -> bool:
        """Whether nothing is due or in flight at this moment (``settled`` without waiting)."""
        return await self._is_settled()

    async def _is_settled(self) -> bool:
        await self.writer.run(lambda db: None)  # the queued acks are committed, so visible
        if self._inflight.tasks:
            return False
        queues = list(self._wake)
        if not queues:
            return True
        (due,) = self.db.execute(
            f"SELECT COUNT(*) FROM bus_message WHERE queue IN ({','.join('?' * len(queues))}) "
            "AND (state='inflight' OR (state='ready' AND available_at<=?))",
            (*queues, self._clock()),
        ).fetchone()
        return int(due) == 0

    # --- consuming ---
    async def consume(self, queue: str, handler: Handler) -> None:
        if queue not in self.specs:
            raise TopologyError(f"queue {queue!r} does not exist")
        self._wake[queue] = asyncio.Event()
        self._loops.append(asyncio.create_task(self._consume_loop(queue, handler)))

    async def stop_consuming(self, grace_s: float) -> None:
        self._stopping = True
        for event in self._wake.values():
            event.set()
        loops, self._loops = self._loops, []
        await asyncio.gather(*loops, return_exceptions=True)
        await self._inflight.drain(grace_s)

    async def _consume_loop(self, queue: str, handler: Handler) -> None:
        wake = self._wake[queue]
        while not self._stopping:
            wake.clear()
            free = self.settings.prefetch - len(self._inflight.tasks)
            if free <= 0:  # every delivery slot is taken: the next to finish wakes the loop
                await wait_event(wake, MAX_IDLE_WAIT_S)
                continue
            rows = await self._take(queue, free)
            for row in rows:
                task = asyncio.create_task(self._deliver(queue, handler, row))
                self._inflight.track(task)
                task.add_done_callback(lambda _: wake.set())
            if not rows:
                await wait_event(wake, self._idle_wait_s(queue))

    def _idle_wait_s(self, queue: str) -> float:
        (due,) = self.db.execute(
            "SELECT MIN(available_at) FROM bus_message WHERE queue=? AND state='ready'", (queue,)
        ).fetchone()
        if due is None:
            return MAX_IDLE_WAIT_S
        return min(max(float(due) - self._clock(), 0.001), MAX_IDLE_WAIT_S)

    async def _take(self, queue: str, limit: int) -> list[tuple[int, str, bytes, int, int]]:
        """Hand out due messages; one over the delivery limit goes to the dead queue instead.
        Handed out before the commit: if it is lost in a crash, the rows are simply ready."""
        now, delivery_limit = self._clock(), self.settings.delivery_limit

        def take(db: sqlite3.Connection) -> tuple[list[Any], int]:
            rows = db.execute(
                "SELECT seq, routing_key, envelope, attempt, deliveries FROM bus_message "
                "WHERE queue=? AND state='ready' AND available_at<=? ORDER BY seq LIMIT ?",
                (queue, now, limit),
            ).fetchall()
            over = [row for row in rows if row[4] >= delivery_limit]
            for seq, *_ in over:
                _mark_dead(db, seq, "broker", "delivery limit reached", now)
            taken = [row for row in rows if row[4] < delivery_limit]
            db.executemany(
                "UPDATE bus_message SET state='inflight', deliveries=deliveries+1 WHERE seq=?",
                [(row[0],) for row in taken],
            )
            return taken, len(over)

        taken, dead = await self.writer.run(take, durable=False)
        for _ in range(dead):
            self.metrics.dead_lettered.labels(queue).inc()
        return taken

    async def _deliver(
        self, queue: str, handler: Handler, row: tuple[int, str, bytes, int, int]
    ) -> None:
        seq, routing_key, body, attempt, deliveries = row
        delivery = Delivery(
            envelope=Envelope.from_json(body),
            queue=queue,
            routing_key=routing_key,
            attempt=attempt,
            redelivered=deliveries > 0,
        )
        try:
            outcome = await self._run_handler(handler, delivery)
            if self._writer is not None:  # closed by an abort: left in flight, like a crash
                self._settle(seq, outcome)
            await self._handled_and_settled()
        finally:
            self._activity.set()

    def _settle(self, seq: int, outcome: Disposition) -> None:
        """Queued for the writer, not awaited: a lost ack only means one more delivery."""
        now = self._clock()

        def settle(db: sqlite3.Connection) -> None:
            if outcome.verdict is Verdict.ACK:
                db.execute("DELETE FROM bus_message WHERE seq=?", (seq,))
            elif outcome.verdict is Verdict.RETRY:
                db.execute(
                    "UPDATE bus_message SET state='ready', attempt=attempt+1, deliveries=0, "
                    "available_at=?, error_class=?, error=? WHERE seq=?",
                    (now + outcome.delay_s, outcome.error_class, outcome.error, seq),
                )
            else:
                _mark_dead(db, seq, outcome.error_class, outcome.error, now)

        self.writer.submit(settle)

    # --- dead letters and operations ---
    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        self._require_queue(queue)
        rows = self.db.execute(
            "SELECT routing_key, envelope, attempt, error_class, error, dead_at FROM bus_message "
            "WHERE queue=? AND state='dead' ORDER BY seq LIMIT ?",
            (queue, limit),
        ).fetchall()
        return [
            DeadLetter(
                envelope=Envelope.from_json(body),
                queue=queue,
                routing_key=key,
                attempts=attempt,
                error_class=error_class or "",
                error=error or "",
                dead_at=datetime.fromtimestamp(dead_at, UTC) if dead_at else None,
            )
            for key, body, attempt, error_class, error, dead_at in rows
        ]

    async def redrive(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        self._require_queue(queue)
        where, params = "queue=? AND state='dead'", [queue]
        if message_ids is not None:
            where += f" AND message_id IN ({','.join('?' * len(message_ids))})"
            params.extend(message_ids)
        sql = (
            "UPDATE bus_message SET state='ready', attempt=1, deliveries=0, available_at=0, "
            f"error_class=NULL, error=NULL, dead_at=NULL WHERE {where}"
        )
        moved = await self.writer.run(lambda db: db.execute(sql, params).rowcount)
        self._wake_up(queue)
        log_event(log, "redriven", queue=queue, count=moved)
        return moved

    def _require_queue(self, queue: str) -> None:
        if queue not in self.specs:
            raise TopologyError(f"queue {queue!r} does not exist")

    async def depths(self) -> list[QueueDepth]:
        counts = {
            (queue, state): count
            for queue, state, count in self.db.execute(
                "SELECT queue, state, COUNT(*) FROM bus_message GROUP BY queue, state"
            )
        }
        return [
            QueueDepth(name, counts.get((name, "ready"), 0), counts.get((name, "dead"), 0))
            for name in self.specs
        ]


def _mark_dead(db: sqlite3.Connection, seq: int, error_class: str, error: str, now: float) -> None:
    db.execute(
        "UPDATE bus_message SET state='dead', error_class=?, error=?, dead_at=? WHERE seq=?",
        (error_class, error, now, seq),
    )
