"""Lab screen fan-out benchmark, end to end: critical results over MLLP to N big screens.

The hub runs as its own process (``python -m hub.cli.main run``: embedded bus and SQLite store,
``JIANHU_LAB__OPEN_SCREEN=true``). N Server-Sent-Events clients follow ``GET /lab/stream``
(aiohttp, in this process), and ORU^R01 messages built from the corpus's critical potassium
(钾 6.8 mmol/L) are sent over MLLP at a steady offered rate, each with its own control id,
patient, visit and order numbers, so each one stores a new Observation and raises a new
critical-value alert. One delivery is one screen receiving that alert's ``critical``/``raised``
event; its latency runs from just before the MLLP send to the arrival at the screen, both on
this process's clock, so it covers the ACK, the bus, the normalizer, the store, the lab
service and the stream. The message's bed (PV1-3.3), which the screen shows beside the alert,
is a tag that tells which message an event belongs to. A short second phase on a fresh hub
with one screen shows what the fan-out itself costs. Not a test: it prints figures.

    python bench/screens.py [--screens 20] [--rate 20] [--seconds 30] [--compare-seconds 10]
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.hl7v2.client import ACCEPTED, MllpClient

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "hl7"
CRITICAL_K = "31-lis-oru-r01-critical-k-enhanced.hl7"  # 钾 6.8 mmol/L (HH), 普外科病区
SENDERS = 4  # MLLP connections: one message in flight on each, so a slow ACK never stalls the pace
WARM_UP = 3  # messages sent one by one before the measured run: first imports, first pages
START_TIMEOUT_S = 90.0
SETTLE_S = 30.0  # how long after the last send the screens may take to get every alert
TAIL_LINES = 30  # of the hub's log, printed when it fails to start


class BenchFailedError(Exception):
    """The run cannot give figures: the message says why."""


# --- the hub as a process ---


@dataclass
class Hub:
    process: "subprocess.Popen[bytes]"
    http_port: int
    mllp_port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-TAIL_LINES:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_hub(data_dir: Path) -> Hub:
    http_port, mllp_port = free_port(), free_port()
    env = {
        **os.environ,
        "JIANHU_DATA_DIR": str(data_dir),
        "JIANHU_HTTP_HOST": "127.0.0.1",
        "JIANHU_HTTP_PORT": str(http_port),
        "JIANHU_MLLP_PORT": str(mllp_port),
        "JIANHU_LAB__OPEN_SCREEN": "true",  # the stream needs no token, as on the wall
        "JIANHU_LOG_LEVEL": "WARNING",
        "JIANHU_SHUTDOWN_GRACE_S": "5",
    }
    # the embedded bus and store: nothing from the caller's environment may point elsewhere
    for name in ("JIANHU_AMQP_URL", "JIANHU_MONGO_URL", "JIANHU_CONSUME"):
        env.pop(name, None)
    log = data_dir / "hub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli.main", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Hub(process, http_port, mllp_port, log)


async def wait_ready(hub: Hub, session: aiohttp.ClientSession) -> None:
    """Ready when ``/readyz`` says so (bus and store answer) and the MLLP port accepts."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise BenchFailedError(
                f"the hub exited with code {hub.process.returncode} while starting:\n"
                + hub.log_tail()
            )
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(f"{hub.base}/readyz") as response:
                if response.status == 200:
                    _, writer = await asyncio.open_connection("127.0.0.1", hub.mllp_port)
                    writer.close()
                    return
        await asyncio.sleep(0.2)
    raise BenchFailedError(
        f"the hub was not ready within {START_TIMEOUT_S:.0f} s:\n" + hub.log_tail()
    )


def stop_hub(hub: Hub) -> None:
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait()


@contextlib.asynccontextmanager
async def running_hub(session: aiohttp.ClientSession) -> AsyncIterator[Hub]:
    """A fresh hub on a fresh data directory, stopped (SIGTERM, wait) however the phase ends."""
    with tempfile.TemporaryDirectory(prefix="jianhu-screens-bench-") as data_dir:
        hub = start_hub(Path(data_dir))
        try:
            await wait_ready(hub, session)
            yield hub
        finally:
            stop_hub(hub)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the messages ---


class CriticalResults:
    """The corpus's critical potassium, renumbered: message ``n`` has its own control id
    (MSH-10), patient (PID-3), visit (PV1-19) and order numbers (ORC/OBR-2 and -3). The
    Observation's id comes from the sender and the filler order number (OBR-3) with the OBX
    position, so a new filler number is a new Observation and a new alert; a new patient and
    visit keep the alerts from meeting on one Patient or Encounter."""

    def __init__(self) -> None:
        manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
        entry = next(item for item in manifest if item["file"] == CRITICAL_K)
        self.charset = str(entry["charset"])
        text = (CORPUS / CRITICAL_K).read_bytes().decode(self.charset)
        self.segments = [line.split("|") for line in text.replace("\n", "\r").split("\r") if line]

    def message(self, number: int) -> str:
        renumbered = []
        for fields in self.segments:
            found = list(fields)
            renumber = _RENUMBER.get(found[0])
            if renumber is not None:
                renumber(found, number)
            renumbered.append("|".join(found))
        return "\r".join(renumbered) + "\r"


def tag(number: int) -> str:
    """What the screen shows as the bed: it tells which message an alert came from."""
    return f"b{number:07d}"


def _msh(fields: list[str], number: int) -> None:
    fields[9] = f"BENCH{number:09d}"  # MSH-10: the field separator is MSH-1, so one less


def _pid(fields: list[str], number: int) -> None:
    fields[3] = f"BP{number:08d}^^^JHYY^PI"  # the first PID-3 identifier keys the Patient


def _pv1(fields: list[str], number: int) -> None:
    ward = fields[3].split("^")
    ward[2] = tag(number)  # PV1-3.3, the bed
    fields[3] = "^".join(ward)
    fields[19] = f"ZYB{number:08d}^^^JHYY^VN"


def _orc(fields: list[str], number: int) -> None:
    fields[2], fields[3] = f"BH{number:08d}^HIS", f"BL{number:08d}^LIS"


def _obr(fields: list[str], number: int) -> None:
    fields[2], fields[3] = f"BH{number:08d}^HIS", f"BL{number:08d}^LIS"


def _zls(fields: list[str], number: int) -> None:
    fields[2] = f"BL{number:08d}"  # the LIS's own record of its notification, same order


_RENUMBER = {"MSH": _msh, "PID": _pid, "PV1": _pv1, "ORC": _orc, "OBR": _obr, "ZLS": _zls}


# --- the screens ---


@dataclass
class Screen:
    """One wall display: follows the stream and notes when each alert's raise arrived."""

    number: int
    arrivals: dict[str, float] = field(default_factory=dict)  # tag -> perf_counter()
    reloads: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url) as response:
            if response.status != 200:
                raise BenchFailedError(f"screen {self.number}: {url} answered {response.status}")
            data: list[bytes] = []
            while line := await response.content.readline():
                arrived = time.perf_counter()
                line = line.rstrip(b"\r\n")
                if line.startswith(b":"):
                    self.connected.set()  # ": connected" first, then ": heartbeat"
                elif line.startswith(b"data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:  # a blank line ends an event
                    self._take(orjson.loads(b"\n".join(data)), arrived)
                    data = []

    def _take(self, event: dict[str, Any], arrived: float) -> None:
        if event.get("type") == "reload":
            self.reloads += 1  # it fell behind and lost what its queue held
        elif event.get("type") == "critical" and event.get("step") == "raised":
            self.arrivals.setdefault(str(event["alert"].get("bed", "")), arrived)


@contextlib.asynccontextmanager
async def connected_screens(
    session: aiohttp.ClientSession, hub: Hub, count: int
) -> AsyncIterator[list[Screen]]:
    screens = [Screen(n) for n in range(count)]
    tasks = [asyncio.create_task(s.follow(session, f"{hub.base}/lab/stream")) for s in screens]
    try:
        all_connected = asyncio.create_task(_all_connected(screens))
        done, _ = await asyncio.wait(
            [all_connected, *tasks], timeout=10, return_when="FIRST_COMPLETED"
        )
        all_connected.cancel()
        for task in done & set(tasks):
            task.result()  # a stream that failed (503: this hub normalizes nothing) raises here
            raise BenchFailedError("a screen's stream ended as soon as it began")
        if not all(s.connected.is_set() for s in screens):
            raise BenchFailedError("not every screen got its stream within 10 s")
        yield screens
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _all_connected(screens: list[Screen]) -> None:
    for screen in screens:
        await screen.connected.wait()


# --- sending ---


@dataclass
class Sent:
    at: dict[str, float] = field(default_factory=dict)  # tag -> perf_counter() before the send
    ack_ms: list[float] = field(default_factory=list)
    refused: int = 0
    late: int = 0  # sends that started over 50 ms after their slot: the pace was not held


async def send_one(client: MllpClient, text: str, number: int, sent: Sent) -> None:
    began = time.perf_counter()
    sent.at[tag(number)] = began
    result = await client.send(text)
    sent.ack_ms.append((time.perf_counter() - began) * 1000)
    if result.outcome != ACCEPTED:
        sent.refused += 1


async def send_paced(hub: Hub, numbers: range, rate: float) -> Sent:
    """One message every 1/rate s, on whichever connection is free; the message is built
    before its slot so the send time is the send alone."""
    results, sent = CriticalResults(), Sent()
    idle: asyncio.Queue[MllpClient] = asyncio.Queue()
    clients = [MllpClient("127.0.0.1", hub.mllp_port, results.charset) for _ in range(SENDERS)]
    for client in clients:
        idle.put_nowait(client)

    async def in_slot(slot: float, number: int) -> None:
        text = results.message(number)
        await asyncio.sleep(max(0.0, slot - time.perf_counter()))
        client = await idle.get()
        if time.perf_counter() - slot > 0.05:
            sent.late += 1
        try:
            await send_one(client, text, number, sent)
        finally:
            idle.put_nowait(client)

    start = time.perf_counter() + 0.1
    try:
        await asyncio.gather(
            *(in_slot(start + i / rate, number) for i, number in enumerate(numbers))
        )
    finally:
        for client in clients:
            await client.close()
    return sent


async def warm_up(hub: Hub, screens: list[Screen], first: int) -> None:
    """A few alerts one at a time, each awaited on every screen: the pipeline works end to end
    and the hub's first-message costs stay out of the figures."""
    results = CriticalResults()
    client = MllpClient("127.0.0.1", hub.mllp_port, results.charset)
    try:
        for number in range(first, first + WARM_UP):
            sent = Sent()
            await send_one(client, results.message(number), number, sent)
            if sent.refused:
                raise BenchFailedError("the hub refused the warm-up message")
            if not await all_arrived(screens, [tag(number)], time.perf_counter() + 15):
                raise BenchFailedError("a warm-up alert did not reach every screen within 15 s")
    finally:
        await client.close()


async def all_arrived(screens: list[Screen], tags: list[str], deadline: float) -> bool:
    while time.perf_counter() < deadline:
        if all(t in s.arrivals for s in screens for t in tags):
            return True
        await asyncio.sleep(0.02)
    return False


# --- a phase and its figures ---


@dataclass
class Figures:
    screens: int
    seconds: float
    refused: int
    late: int
    per_message: list[list[float]]  # in send order: each screen's latency in ms, as arrived
    ack_ms: list[float]
    hub_cpu_s: float
    bench_cpu_s: float
    wall_s: float
    reloads: int

    @property
    def sent(self) -> int:
        return len(self.per_message)

    @property
    def expected(self) -> int:
        return self.sent * self.screens

    @property
    def received(self) -> int:
        return sum(len(arrivals) for arrivals in self.per_message)

    @property
    def missing(self) -> int:
        return self.expected - self.received

    def latency_ms(self, first: int | None = None) -> list[float]:
        """Every delivery's latency, of the first ``first`` messages only if given."""
        return [ms for arrivals in self.per_message[:first] for ms in arrivals]

    def spread_ms(self) -> list[float]:
        """Per message that reached every screen: the last screen's arrival after the first."""
        return [
            max(arrivals) - min(arrivals)
            for arrivals in self.per_message
            if len(arrivals) == self.screens
        ]

    def p50_by_third(self) -> list[float]:
        """Does latency grow as the run goes on (open alerts pile up, nobody acknowledges)?"""
        third = max(1, self.sent // 3)
        parts = [
            self.per_message[:third],
            self.per_message[third:-third],
            self.per_message[-third:],
        ]
        return [percentile([ms for arrivals in part for ms in arrivals], 0.5) for part in parts]


async def phase(
    session: aiohttp.ClientSession, screens_count: int, rate: float, seconds: float
) -> Figures:
    messages = max(1, round(rate * seconds))
    async with (
        running_hub(session) as hub,
        connected_screens(session, hub, screens_count) as screens,
    ):
        await warm_up(hub, screens, first=1)
        numbers = range(1_000, 1_000 + messages)
        cpu_before, bench_before = cpu_seconds(hub.process.pid), time.process_time()
        began = time.perf_counter()
        sent = await send_paced(hub, numbers, rate)
        await all_arrived(screens, list(sent.at), time.perf_counter() + SETTLE_S)
        wall = time.perf_counter() - began
        hub_cpu = cpu_seconds(hub.process.pid) - cpu_before
        bench_cpu = time.process_time() - bench_before
    per_message = [
        [(s.arrivals[name] - sent.at[name]) * 1000 for s in screens if name in s.arrivals]
        for name in (tag(number) for number in numbers)
        if name in sent.at
    ]
    return Figures(
        screens=screens_count,
        seconds=seconds,
        refused=sent.refused,
        late=sent.late,
        per_message=per_message,
        ack_ms=sent.ack_ms,
        hub_cpu_s=hub_cpu,
        bench_cpu_s=bench_cpu,
        wall_s=wall,
        reloads=sum(s.reloads for s in screens),
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def show(figures: Figures, rate: float) -> None:
    lat, spread, ack = figures.latency_ms(), figures.spread_ms(), figures.ack_ms
    print(f"--- {figures.screens} screen(s), {rate:g} msg/s offered for {figures.seconds:g} s")
    print(
        f"messages sent: {figures.sent:,} (refused {figures.refused}, "
        f"sent over 50 ms late {figures.late})"
    )
    print(
        f"deliveries: expected {figures.expected:,} (messages x screens), "
        f"received {figures.received:,}, missing {figures.missing:,}"
    )
    print(
        f"latency send -> screen ms: p50 {percentile(lat, 0.5):.1f}  "
        f"p90 {percentile(lat, 0.9):.1f}  p99 {percentile(lat, 0.99):.1f}  "
        f"max {max(lat, default=0.0):.1f}"
    )
    thirds = "  ".join(f"{ms:.1f}" for ms in figures.p50_by_third())
    print(f"latency p50 ms by third of the run: {thirds}")
    print(
        f"spread first -> last screen ms: p50 {percentile(spread, 0.5):.2f}  "
        f"p99 {percentile(spread, 0.99):.2f}"
    )
    print(f"MLLP ACK ms: p50 {percentile(ack, 0.5):.1f}  p99 {percentile(ack, 0.99):.1f}")
    print(
        f"hub CPU: {figures.hub_cpu_s:.1f} s in {figures.wall_s:.1f} s "
        f"({figures.hub_cpu_s / figures.wall_s:.0%} of one core, "
        f"{figures.hub_cpu_s / max(figures.sent, 1) * 1000:.1f} ms per message); "
        f"this benchmark's own CPU {figures.bench_cpu_s:.1f} s"
    )
    fell_behind = f"yes, {figures.reloads} reload event(s)" if figures.reloads else "no"
    print(f"a screen fell behind (reload event): {fell_behind}", flush=True)


def compare(many: Figures, one: Figures) -> None:
    """Both phases over the same first messages after the warm-up: the same number of alerts
    open, the same time since the hub started, so the difference is the fan-out."""
    window = min(many.sent, one.sent)
    with_many, with_one = many.latency_ms(window), one.latency_ms(window)
    print(
        f"fan-out cost over the first {window} messages of each phase: latency p50 "
        f"{percentile(with_many, 0.5):.1f} ms with {many.screens} screens vs "
        f"{percentile(with_one, 0.5):.1f} ms with 1; p90 {percentile(with_many, 0.9):.1f} vs "
        f"{percentile(with_one, 0.9):.1f} ms; p99 {percentile(with_many, 0.99):.1f} vs "
        f"{percentile(with_one, 0.99):.1f} ms; hub CPU per message "
        f"{many.hub_cpu_s / many.sent * 1000:.1f} vs {one.hub_cpu_s / one.sent * 1000:.1f} ms "
        "(whole phases)"
    )


async def run(args: argparse.Namespace) -> int:
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=None)
    connector = aiohttp.TCPConnector(limit=0)  # every screen its own connection
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        runs = [await phase(session, args.screens, args.rate, args.seconds)]
        show(runs[0], args.rate)
        if args.compare_seconds > 0:
            runs.append(await phase(session, 1, args.rate, args.compare_seconds))
            show(runs[1], args.rate)
            compare(*runs)
    missing = sum(f.missing for f in runs)
    refused = sum(f.refused for f in runs)
    if missing or refused:
        print(
            f"FAILED: {missing:,} deliveries missing, {refused} messages refused", file=sys.stderr
        )
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second offered")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--compare-seconds",
        type=float,
        default=10.0,
        help="length of the second phase with one screen (0: skip it)",
    )
    args = parser.parse_args()
    try:
        code = uvloop.run(run(args))
    except BenchFailedError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
