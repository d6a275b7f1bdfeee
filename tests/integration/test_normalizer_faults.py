"""Whose fault a failed normalization is decides what happens to the message: a message the
mapping cannot read (``MappingError``) goes to the dead letters at once with its reason; any
other exception is the hub's own (a bug, a store outage): it is retried, and the log has its
traceback, masked."""

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.bus.settings import BusSettings
from hub.hl7v2 import normalizer as normalizer_module
from hub.hl7v2.mapping import normalize as mapping_normalize
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from tests.clock import ManualClock
from tests.integration.fhir_api import Client, settle, start_api

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
SYSTEM = {"Authorization": "Bearer his-key", "Content-Type": "text/plain"}
QUEUE = "hl7v2.normalizer"


RETRY_S = 60.0  # the first retry's delay: a minute, as production would, and no test waits it


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hub(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Client]:
    delays = BusSettings(retry_delays_s=(RETRY_S, RETRY_S, 600.0))
    client = await start_api(tmp_path, consume=True, bus_clock=clock, bus=delays)
    yield client
    await client.close()


async def dead_letters(hub: Client) -> list[Any]:
    return list(await hub.app[RUNTIME].bus.dead_letters(QUEUE))


async def test_in_original_mode_a_message_the_mapping_cannot_take_gets_ae(hub: Client) -> None:
    """The accept ACK is all an original-mode sender hears: a charge message without its FT1
    segments gets AE with an ERR naming them, not AA followed by a dead letter."""
    body = (EXAMPLES / "dft-p03-without-ft1.hl7").read_bytes()
    response = await hub.post("/hl7v2", data=body, headers=SYSTEM)
    assert response.status == 200
    ack = (await response.read()).decode("gb18030")
    assert "MSA|AE|HIS-NO-FT1" in ack
    err = next(line for line in ack.split("\r") if line.startswith("ERR|"))
    assert err.startswith("ERR|FT1^1^^100&")  # v2.4 ELD: the segment, table 0357 code 100
    msa = next(line for line in ack.split("\r") if line.startswith("MSA|"))
    assert "no FT1 segment" in msa  # MSA-3 says it in words
    await settle(hub)
    assert await dead_letters(hub) == []  # refused at the door: nothing to dead-letter
    (archived,) = await hub.app[RUNTIME].archive.search(ArchiveQuery(limit=5))
    assert archived.status == "rejected"


async def test_in_enhanced_mode_it_is_accepted_then_dead_at_once(hub: Client) -> None:
    """An enhanced-mode sender gets CA (the message is safe) and hears the rest from the
    application ACK; the normalizer dead-letters it at the first attempt, with why."""
    original = (EXAMPLES / "dft-p03-without-ft1.hl7").read_bytes().decode("gb18030")
    msh, _, rest = original.partition("\n")
    fields = msh.split("|")
    fields[14:16] = ["AL", "AL"]  # MSH-15 accept ACK, MSH-16 application ACK: always
    body = ("|".join(fields) + "\n" + rest).encode("gb18030")
    response = await hub.post("/hl7v2", data=body, headers=SYSTEM)
    assert "MSA|CA|" in (await response.read()).decode("gb18030")
    await settle(hub)
    dead = await dead_letters(hub)
    assert dead[0].attempts == 1  # not retried: the sender must correct it
    assert dead[0].error_class.endswith("PermanentError")
    assert "the DFT message has no FT1 segment" in dead[0].error


async def test_a_failure_of_the_hub_is_retried_with_its_traceback_logged(
    hub: Client,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    real = mapping_normalize

    def broken(message: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # a bug the first time: a ValueError that is no mapping error
            raise ValueError("int() of '330683198509300572' failed")
        return real(message)

    monkeypatch.setattr(normalizer_module, "normalize", broken)
    caplog.set_level(logging.INFO)
    body = (EXAMPLES / "oru-r01-cbc.hl7").read_bytes()
    assert (await hub.post("/hl7v2", data=body, headers=SYSTEM)).status == 200

    async def status() -> str:
        listed = await (
            await hub.get("/ops/messages", headers={"Authorization": "Bearer ops-key"})
        ).json()
        return str(listed[0]["status"])

    await settle(hub)
    assert len(calls) == 1  # failed, and waits for its retry
    assert await status() == "published"
    clock.advance(RETRY_S - 1)
    await settle(hub)
    assert len(calls) == 1  # not due yet
    clock.advance(1)
    await settle(hub)
    assert await status() == "stored"
    assert len(calls) == 2  # failed once, then succeeded on the retry
    assert await dead_letters(hub) == []
    failed = [r for r in caplog.records if getattr(r, "event", "") == "normalize_failed"]
    assert len(failed) == 1
    assert failed[0].levelno == logging.ERROR
    assert failed[0].exc_info is not None  # the traceback goes to the log
    retried = [r for r in caplog.records if getattr(r, "event", "") == "retried"]
    assert [getattr(r, "error_class", "") for r in retried] == ["hub.base.errors.RetryableError"]
