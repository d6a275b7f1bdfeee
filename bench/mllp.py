"""MLLP ingest benchmark: eight concurrent senders on loopback push ORU^R01 messages (10 OBX,
Chinese text) to the hub, which acknowledges each only after archiving it and a confirmed
publish to the real RabbitMQ (quorum queues), or with ``--bus embedded`` to the embedded bus of
one ``jianhu run`` (the embedded defaults a new user gets). Prints acknowledged msg/s, ACK
latency p50/p99 (back to back, and paced at 1,000 msg/s offered), the rate at which the
normalizer turns the
backlog into stored FHIR resources, and, in the same run, the rate of python-hl7's asyncio
MLLP server answering at once (no archive, no broker) as the baseline. Not a test: it prints
figures.

    python bench/mllp.py [--messages 20000] [--senders 8] [--processes 1|2] [--bus embedded]

Broker: JIANHU_BENCH_AMQP_URL or JIANHU_TEST_AMQP_URL, else scripts/rabbitmq-local.sh starts one.
"""

import argparse
import asyncio
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bus import broker_url, delete_queues
from hub.hl7v2.mllp import frame
from routes.table import default_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ["7.8", "4.52", "135", "0.42", "88.1", "29.6", "336", "12.8", "236", "5.8"]
CODES = [
    ("6690-2", "白细胞计数", "10*9/L", "3.5-9.5"),
    ("789-8", "红细胞计数", "10*12/L", "4.3-5.8"),
    ("718-7", "血红蛋白", "g/L", "130-175"),
    ("4544-3", "红细胞压积", "L/L", "0.40-0.50"),
    ("787-2", "平均红细胞体积", "fL", "82-100"),
    ("785-6", "平均血红蛋白量", "pg", "27-34"),
    ("786-4", "平均血红蛋白浓度", "g/L", "316-354"),
    ("788-0", "红细胞分布宽度", "%", "11.0-14.5"),
    ("777-3", "血小板计数", "10*9/L", "125-350"),
    ("751-8", "中性粒细胞绝对值", "10*9/L", "1.8-6.3"),
]


def oru(number: int) -> bytes:
    control = f"B{number:09d}"
    segments = [
        f"MSH|^~\\&|LIS|JHYY|HIS|JHYY|20261126093000||ORU^R01^ORU_R01|{control}|P|2.5|||||"
        "|UNICODE UTF-8",
        f"PID|1||JZK{number % 5000:08d}^^^JHYY^PI||王^{number % 97}号||19800101|M|||"
        "浙江省绍兴市越城区解放北路1号",
        f"PV1|1|O|门诊检验^^^JHYY||||||||||||||||V{number:09d}",
        f"OBR|1|P{number:09d}|F{number:09d}|58410-2^血常规^LN|||20261126083000|||||||||||||||"
        "20261126092900||HM|F",
    ]
    for position, ((code, name, unit, ref), value) in enumerate(zip(CODES, RESULTS, strict=True)):
        segments.append(
            f"OBX|{position + 1}|NM|{code}^{name}^LN||{value}|{unit}|{ref}|N|||F|||20261126083000"
        )
    return ("\r".join(segments) + "\r").encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def sender(port: int, numbers: range, pace_s: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    for number in numbers:
        if pace_s:
            next_at += pace_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        began = time.perf_counter()
        writer.write(frame(oru(number)))
        await writer.drain()
        answer = await reader.readuntil(b"\x1c\r")
        latencies.append((time.perf_counter() - began) * 1000)
        if b"MSA|AA|" not in answer:
            raise SystemExit(f"not accepted: {answer[:200]!r}")
    writer.close()


async def push(
    port: int, total: int, senders: int, start: int, rate: float = 0.0
) -> tuple[float, list[float]]:
    """(acknowledged msg/s, latencies ms); ``rate`` > 0 paces the senders to that total rate."""
    latencies: list[float] = []
    share = total // senders
    pace = senders / rate if rate else 0.0
    began = time.perf_counter()
    await asyncio.gather(
        *(
            sender(port, range(start + n * share, start + (n + 1) * share), pace, latencies)
            for n in range(senders)
        )
    )
    return len(latencies) / (time.perf_counter() - began), latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def stored(data_dir: Path) -> int:
    db = sqlite3.connect(data_dir / "jianhu-archive.sqlite3")
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM hl7_message WHERE status='stored'").fetchone()
    finally:
        db.close()
    return int(count)


def start_hub(
    data_dir: Path, amqp: str, mllp_port: int, http_port: int, consume: str = "all"
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JIANHU_DATA_DIR": str(data_dir),
        "JIANHU_AMQP_URL": amqp,
        "JIANHU_MLLP_PORT": str(mllp_port),
        "JIANHU_HTTP_PORT": str(http_port),
        "JIANHU_HTTP_HOST": "127.0.0.1",
        "JIANHU_LOG_LEVEL": os.environ.get("JIANHU_LOG_LEVEL", "WARNING"),
        "JIANHU_CONSUME": consume,
        # a worker normalizes this many messages at once; they share the store's commits
        "JIANHU_BUS__PREFETCH": os.environ.get("JIANHU_BUS__PREFETCH", "64"),
    }
    return subprocess.Popen([str(Path(sys.executable).parent / "jianhu"), "run"], env=env, cwd=ROOT)


BASELINE = """
import asyncio, sys, hl7.mllp
async def handle(reader, writer):
    try:
        while True:
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
async def main():
    port = int(sys.argv[1])
    server = await hl7.mllp.start_hl7_server(handle, "127.0.0.1", port, encoding="utf-8")
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def start_baseline(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BASELINE, str(port)])


async def wait_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


async def main_async(args: argparse.Namespace) -> None:
    embedded = args.bus == "embedded"
    if embedded and args.processes != 1:
        raise SystemExit("the embedded bus serves one process: use --processes 1")
    amqp = "" if embedded else broker_url()
    if amqp:
        await delete_queues(amqp, [route.queue for route in default_table().routes])
    data_dir = Path(tempfile.mkdtemp(prefix="jianhu-mllp-bench-"))
    mllp_port, http_port, baseline_port = free_port(), free_port(), free_port()
    split = args.processes == 2  # an intake process, and a worker started later
    hubs = [start_hub(data_dir, amqp, mllp_port, http_port, consume="none" if split else "all")]
    baseline = start_baseline(baseline_port)
    rows: list[tuple[str, str]] = []
    try:
        await wait_port(mllp_port)
        await wait_port(baseline_port)
        await push(mllp_port, 400, args.senders, 10_000_000)  # warm-up
        began, cpu_before = time.perf_counter(), cpu_seconds(hubs[0].pid)
        rate, latencies = await push(mllp_port, args.messages, args.senders, 0)
        cpu_ms = (cpu_seconds(hubs[0].pid) - cpu_before) / args.messages * 1000
        print(f"acknowledged: {rate:,.0f} msg/s, {_p50_p99(latencies)} ms", flush=True)
        paced_count = max(400, int(args.rate * 5))  # about five seconds at the offered rate
        paced_rate, paced = await push(
            mllp_port, paced_count, args.senders, 20_000_000, rate=args.rate
        )
        print(f"paced: {paced_rate:,.0f} msg/s, {_p50_p99(paced)} ms", flush=True)
        rows += [
            ("acknowledged msg/s (ACK after archive + confirmed publish)", f"{rate:,.0f}"),
            ("ACK latency back to back, p50 / p99 ms", _p50_p99(latencies)),
            ("CPU of the listening hub process per acknowledged message, ms", f"{cpu_ms:.2f}"),
            (
                f"ACK latency at {args.rate:,.0f} msg/s offered ({paced_rate:,.0f} achieved)",
                _p50_p99(paced),
            ),
        ]
        total = 400 + args.messages + paced_count
        if split:
            # the worker starts on the backlog the intake left, and the senders go on meanwhile
            hubs.append(start_hub(data_dir, amqp, 0, free_port(), consume="all"))
            await drained(data_dir, 1, 0, time.perf_counter(), 60)  # the worker is up
            before, began = stored(data_dir), time.perf_counter()
            busy_rate, busy = await push(mllp_port, args.messages, args.senders, 30_000_000)
            print(f"acknowledged while normalizing: {busy_rate:,.0f} msg/s", flush=True)
            total += args.messages
            normalized = await drained(data_dir, total, before, began, args.window)
            rows += [
                ("acknowledged msg/s while the worker normalizes", f"{busy_rate:,.0f}"),
                ("ACK latency meanwhile, p50 / p99 ms", _p50_p99(busy)),
                (
                    "normalized by the worker process (12 resources each), msg/s",
                    f"{normalized:,.1f}",
                ),
            ]
        else:  # one process acknowledges and normalizes: everything stored over the whole run
            normalized = await drained(data_dir, total, 0, began, args.window)
            rows.append(
                ("normalized in the same process (12 resources each), msg/s", f"{normalized:,.1f}")
            )
        print(f"normalized: {normalized:,.1f} msg/s", flush=True)
        raw_rate, raw_latencies = await push(baseline_port, args.messages, args.senders, 0)
        rows += [
            ("python-hl7 asyncio MLLP server (no durability), msg/s", f"{raw_rate:,.0f}"),
            ("python-hl7 ACK latency p50 / p99 ms", _p50_p99(raw_latencies)),
        ]
    finally:
        for hub in hubs:
            hub.send_signal(signal.SIGTERM)
        baseline.terminate()
        for hub in hubs:
            hub.wait(timeout=60)
        baseline.wait(timeout=10)
        # leave no backlog behind for the next run or the tests on the same broker
        if amqp:
            await delete_queues(amqp, [route.queue for route in default_table().routes])
    bus = "the embedded bus" if embedded else "RabbitMQ quorum queues"
    print(
        f"\n{args.messages:,} ORU^R01 (10 OBX), {args.senders} senders, {bus}, "
        f"{args.processes} hub process(es)\n"
    )
    print("| figure | value |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")


async def drained(data_dir: Path, total: int, before: int, began: float, window_s: float) -> float:
    """Stored messages per second since ``began``, until all ``total`` are stored or the
    window has passed (the rate then is over the window)."""
    deadline = time.perf_counter() + window_s
    count = stored(data_dir)
    while count < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
        count = stored(data_dir)
    return (count - before) / (time.perf_counter() - began)


def _p50_p99(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {percentile(values, 0.99):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1000.0, help="msg/s offered when paced")
    parser.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        default=2,
        help="1: one hub does everything; 2: an intake hub and a normalizer hub",
    )
    parser.add_argument(
        "--window", type=float, default=120.0, help="at most this long for the normalizer"
    )
    parser.add_argument(
        "--bus",
        choices=("rabbitmq", "embedded"),
        default="rabbitmq",
        help="embedded: one `jianhu run` with the embedded defaults, as a new user starts it",
    )
    uvloop.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
