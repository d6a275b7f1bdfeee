"""A message over CLAIM_CHECK_BYTES travels on the bus as a claim check: the envelope names the
archived message and carries no body; the normalizer and the lab read the text from the
archive, so the result is stored and the lab sees its statuses as for any message."""

from pathlib import Path

from hub.base.envelope import Envelope
from hub.bus.base import Delivery
from hub.bus.topology import INBOUND, QueueSpec
from hub.hl7v2.message import without_results
from hub.hl7v2.publishing import CLAIM_CHECK, CLAIM_CHECK_BYTES
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from tests.faults.streams import oru
from tests.integration.fhir_api import settle, start_api

SYSTEM = {"Authorization": "Bearer his-key", "Content-Type": "text/plain"}


async def test_a_big_result_travels_as_a_claim_check_and_is_stored(tmp_path: Path) -> None:
    api = await start_api(tmp_path, consume=True)
    try:
        runtime = api.app[RUNTIME]
        seen: list[Envelope] = []

        async def watch(delivery: Delivery) -> None:
            seen.append(delivery.envelope)

        await runtime.bus.declare(QueueSpec("test.watch", INBOUND, ("hl7v2.ORU.#",)))
        await runtime.bus.consume("test.watch", watch)
        big = oru(1, results=5_000)
        assert len(big) > CLAIM_CHECK_BYTES
        small = oru(2)
        for raw in (big, small):
            response = await api.post("/hl7v2", data=raw, headers=SYSTEM)
            assert response.status == 200
            assert "MSA|AA|" in await response.text()
        await settle(api)
        by_body = sorted(seen, key=lambda e: len(e.body))
        assert by_body[0].body == b""  # the big one: a claim check
        assert by_body[0].headers[CLAIM_CHECK] == "archive"
        assert by_body[1].body  # a small one travels whole
        assert CLAIM_CHECK not in by_body[1].headers
        stored = {m.control_id: m for m in await runtime.archive.search(ArchiveQuery(limit=5))}
        assert {m.status for m in stored.values()} == {"stored"}
        big_message = stored["LIS00000001"]
        # whole: the HTTP intake once read only the body's first chunks of a message this big
        assert big_message.text == big.decode()
        observations = [r for r in big_message.resources if r.startswith("Observation/")]
        assert len(observations) == 5_000
    finally:
        await api.close()


def test_a_status_reader_gets_the_message_without_its_results() -> None:
    text = "MSH|^~\\&|LIS\rPID|1\rOBR|1\rOBX|1|NM\rOBX|2|NM\rNTE|1\rSPM|1"
    assert without_results(text) == "MSH|^~\\&|LIS\rPID|1\rOBR|1\rNTE|1\rSPM|1"
    assert without_results("MSH|1\nOBX|1\nPID|1\n") == "MSH|1\rPID|1"
    assert without_results("MSH|1\rPID|1") == "MSH|1\rPID|1"
