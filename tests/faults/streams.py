"""What the fault suite needs: the hub as a real process (``jianhu run``) that a test can kill,
a sender that behaves as a real LIS does (it resends a message that got no ACK, over a new
connection, until it is acknowledged), and the archive read from outside the hub, to count
what was acknowledged, stored, lost and processed twice."""

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hub.hl7v2.mllp import frame
from routes.table import default_table

JIANHU = Path(sys.executable).with_name("jianhu")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def oru(number: int, results: int = 3, sender: str = "LIS") -> bytes:
    """An ORU^R01 of its own patient and order, so its resources are its own."""
    segments = [
        f"MSH|^~\\&|{sender}|JHYY|JIANHU|JHYY|20261126093000||ORU^R01^ORU_R01|"
        f"{sender}{number:08d}|P|2.5",
        f"PID|1||F{number:08d}^^^JHYY^PI||刘^洋{number}||19850930|M",
        f"OBR|1|P{number:08d}^HIS|L{number:08d}^LIS|CBC^血常规^L|||20261126083000",
    ]
    segments += [
        f"OBX|{n}|NM|718-{n}^血红蛋白{n}^LN||{100 + n % 50}|g/L|130-175||||F|||20261126083000"
        for n in range(1, results + 1)
    ]
    return ("\r".join(segments) + "\r").encode()


@dataclass
class Hub:
    """``jianhu run`` in a process of its own, on ports of its own."""

    data_dir: Path
    amqp_url: str = ""
    mllp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ | {
            "JIANHU_DATA_DIR": str(self.data_dir),
            "JIANHU_AMQP_URL": self.amqp_url,
            "JIANHU_MONGO_URL": "",
            "JIANHU_MLLP_PORT": str(self.mllp_port),
            "JIANHU_HTTP_PORT": str(self.http_port),
            "JIANHU_HTTP_HOST": "127.0.0.1",
            "JIANHU_LOG_LEVEL": "WARNING",
            "JIANHU_BUS__RETRY_DELAYS_S": "[0.5, 1]",
            "JIANHU_HL7__CLAIM_GRACE_S": "2",
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [str(JIANHU), "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        """kill -9: no shutdown, nothing flushed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()

    @property
    def archive(self) -> Path:
        return self.data_dir / "jianhu-archive.sqlite3"


@dataclass
class Sender:
    """One LIS connection: sends its messages in order, each until acknowledged."""

    port: int
    acks: dict[str, str] = field(default_factory=dict)  # control id -> the first ACK
    latencies_ms: list[float] = field(default_factory=list)
    resends: int = 0
    differing_acks: list[str] = field(default_factory=list)  # a resend answered otherwise
    timeout_s: float = 10.0
    on_ack: Callable[[], None] = lambda: None  # after each first ACK (a test's progress)
    _stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send_all(self, messages: Iterable[tuple[str, bytes]], deadline_s: float) -> None:
        give_up = time.monotonic() + deadline_s
        for control, raw in messages:
            while not await self._try(control, raw):
                if time.monotonic() > give_up:
                    raise AssertionError(f"{control} was never acknowledged")
                self.resends += 1
                await asyncio.sleep(0.1)  # a real LIS waits a moment before it reconnects

    async def _try(self, control: str, raw: bytes) -> bool:
        try:
            if self._stream is None:
                self._stream = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self._stream
            began = time.perf_counter()
            writer.write(frame(raw))
            await writer.drain()
            data = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), self.timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            self._close()
            return False
        self.latencies_ms.append((time.perf_counter() - began) * 1000)
        ack = data[data.index(b"\x0b") + 1 : -2].decode()
        if control in self.acks:
            if self.acks[control] != ack:
                self.differing_acks.append(control)
        else:
            self.acks[control] = ack
            self.on_ack()
        return True

    def _close(self) -> None:
        if self._stream is not None:
            self._stream[1].close()
            self._stream = None

    def close(self) -> None:
        self._close()


def archive_rows(archive: Path) -> dict[str, tuple[str, int, int]]:
    """control id -> (status, attempts, processings), read from outside the hub."""
    db = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT control_id, status, attempts, processings FROM hl7_message "
            "WHERE status != 'rejected'"
        ).fetchall()
    finally:
        db.close()
    found: dict[str, tuple[str, int, int]] = {}
    for control, status, attempts, processings in rows:
        if control in found:  # the same control id twice: a message archived twice
            found[control] = ("archived twice", attempts, processings)
        else:
            found[control] = (status, attempts, processings)
    return found


async def all_stored(
    archive: Path, controls: set[str], timeout_s: float
) -> dict[str, tuple[str, int, int]]:
    """The archive once every message is stored (the hub's normalizer runs in another process
    and says so only through the archive), or as it is when the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = archive_rows(archive)
        if all(rows.get(c, ("",))[0] == "stored" for c in controls):
            return rows
        if time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


class Progress:
    """Counts first ACKs across senders; ``reached`` is set at the threshold."""

    def __init__(self, threshold: int) -> None:
        self.count, self.threshold = 0, threshold
        self.reached = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        if self.count >= self.threshold:
            self.reached.set()


@dataclass
class Tally:
    """The figures every fault test prints."""

    name: str
    sent: int
    acknowledged: int
    stored: int
    lost: int
    processed_twice: int
    archived_twice: int
    other_ack_after_crash: int
    ack_p99_ms: float

    def print(self) -> None:
        print(
            f"\n[fault] {self.name}: sent {self.sent}, acknowledged {self.acknowledged}, "
            f"stored {self.stored}, lost {self.lost}, processed twice {self.processed_twice}, "
            f"archived twice {self.archived_twice}, resends answered with another ACK "
            f"{self.other_ack_after_crash}, ACK p99 {self.ack_p99_ms:.1f} ms"
        )


def tally(
    name: str, sent: set[str], senders: list[Sender], rows: dict[str, tuple[str, int, int]]
) -> Tally:
    acknowledged = {c for s in senders for c in s.acks if c in sent}
    stored = {c for c in sent if rows.get(c, ("",))[0] == "stored"}
    latencies = sorted(ms for s in senders for ms in s.latencies_ms)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return Tally(
        name=name,
        sent=len(sent),
        acknowledged=len(acknowledged),
        stored=len(stored),
        lost=len(acknowledged - stored),
        processed_twice=sum(1 for c in sent if c in rows and rows[c][2] > rows[c][1]),
        archived_twice=sum(1 for c in sent if rows.get(c, ("",))[0] == "archived twice"),
        other_ack_after_crash=sum(len(s.differing_acks) for s in senders),
        ack_p99_ms=p99,
    )


def route_queues() -> list[str]:
    return [route.queue for route in default_table().routes]
