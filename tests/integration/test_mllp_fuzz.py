"""Malformed input at the MLLP listener: 100,000 broken frames and messages with ``--long``,
10,000 otherwise (truncated, wrong separators, binary garbage, no MSH, huge fields, the wrong
character set) on real sockets. The hub never crashes, answers every frame with an ACK (AE or
AR for what it refuses), archives what it could read, and still takes a good message
afterwards."""

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.hl7v2.message import Message
from hub.hl7v2.mllp import frame
from hub.hl7v2.settings import Hl7Settings, ListenerSettings
from hub.runtime import Runtime
from hub.settings import load_settings
from store.archive import ArchiveQuery

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
SAMPLES: list[bytes] = [(CORPUS / str(e["file"])).read_bytes() for e in MANIFEST]
CONNECTIONS = 8


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Runtime]:
    listener = ListenerSettings(max_message_bytes=256_000, idle_timeout_s=60)
    runtime = Runtime(
        load_settings(
            data_dir=tmp_path,
            mllp_port=0,
            http_host="127.0.0.1",
            hl7=Hl7Settings(listeners=(listener,), message_types=("ORU^R01",)),
        )
    )
    await runtime.start(consume=False)  # the ingest path only: nothing normalizes
    yield runtime
    await runtime.stop()


def mutate(rng: random.Random) -> bytes:
    """One broken message, built from a real one."""
    sample = rng.choice(SAMPLES)
    kind = rng.randrange(7)
    if kind == 0:  # truncated anywhere
        return sample[: rng.randrange(len(sample))]
    if kind == 1:  # garbage
        return rng.randbytes(rng.randrange(1, 400))
    if kind == 2:  # no MSH
        return sample.split(b"\r", 1)[-1]
    if kind == 3:  # separators swapped or broken
        return sample.replace(b"|", rng.choice([b"^", b"~", b"", b"\x00"]), rng.randrange(1, 9))
    if kind == 4:  # a huge field
        return sample.replace(b"|", b"|" + b"X" * rng.randrange(1_000, 100_000), 1)
    if kind == 5:  # the wrong character set: bytes in one, labelled and configured otherwise
        return sample.decode("utf-8", errors="replace").encode("utf-16")
    return sample.replace(b"|", b"\\", 1)  # MSH-1 becomes the escape character


async def storm(runtime: Runtime, seed: int, count: int) -> list[bytes]:
    """Send ``count`` frames on one connection without waiting; read every answer."""
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", runtime.listeners[0].port)

    async def send() -> None:
        for _ in range(count):
            writer.write(frame(mutate(rng)))
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
        await writer.drain()

    sender = asyncio.create_task(send())
    answers = []
    for _ in range(count):
        data = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 30)
        answers.append(data[data.index(b"\x0b") + 1 : -2])
    await sender
    writer.close()
    return answers


async def test_a_hundred_thousand_broken_frames(hub: Runtime, long_run: bool) -> None:
    frames = 100_000 if long_run else 10_000  # each refusal is archived: about 1 ms apiece
    per_connection = frames // CONNECTIONS
    results = await asyncio.gather(
        *(storm(hub, seed, per_connection) for seed in range(CONNECTIONS))
    )
    codes: dict[str, int] = {}
    for answers in results:
        assert len(answers) == per_connection
        for answer in answers:
            msa = Message(answer.decode("utf-8", errors="replace")).first("MSA")
            assert msa is not None
            codes[msa.value(1)] = codes.get(msa.value(1), 0) + 1
    assert set(codes) <= {"AA", "AE", "AR", "CA", "CE", "CR"}  # enhanced mode answers C*
    refused = sum(codes.get(code, 0) for code in ("AE", "AR", "CE", "CR"))
    assert refused > frames * 0.9
    archived = await hub.archive.search(ArchiveQuery(status="rejected", limit=frames))
    assert len(archived) > frames * 0.5  # what could be read is kept for a person to look at
    # the listener still works
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.listeners[0].port)
    good = next(s for s in SAMPLES if b"ORU^R01" in s[:200] and b"|P|" in s[:200])
    writer.write(frame(good))
    data = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10)
    writer.close()
    msa = Message(data[1:-2].decode("utf-8", errors="replace")).first("MSA")
    assert msa is not None
    assert msa.value(1) == "AA"


@given(st.binary(max_size=2000))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_any_bytes_get_an_answer(hub: Runtime, payload: bytes) -> None:
    ingest = hub.listeners[0].ingest
    answer = await ingest.handle(payload, "127.0.0.1")
    assert answer.ack is not None
    msa = Message(answer.ack).first("MSA")
    assert msa is not None
    assert msa.value(1) in ("AE", "AR")
