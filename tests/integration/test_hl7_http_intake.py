"""HL7 v2 posted over HTTP goes through the same path as MLLP; the ACK is the response body."""

from pathlib import Path

import pytest

from hub.hl7v2.message import Message
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from tests.integration.fhir_api import Client

CBC = (Path(__file__).parents[1] / "data" / "hl7" / "19-lis-oru-r01-cbc-corrected.hl7").read_bytes()
SYSTEM = {"Authorization": "Bearer his-key"}


async def post(
    api: Client, body: bytes, content_type: str, key: dict[str, str] = SYSTEM
) -> tuple[int, str]:
    response = await api.post("/hl7v2", data=body, headers={**key, "Content-Type": content_type})
    return response.status, await response.text()


async def test_a_posted_message_is_acknowledged_and_archived(api: Client) -> None:
    status, text = await post(api, CBC, "x-application/hl7-v2+er7; charset=utf-8")
    assert status == 200
    msa = Message(text).first("MSA")
    assert msa is not None
    assert msa.value(1) == "AA"
    runtime = api.app[RUNTIME]
    archived = await runtime.archive.search(ArchiveQuery(control_id=msa.value(2)))
    assert len(archived) == 1
    assert archived[0].message_type == "ORU^R01"


async def test_bad_posts_get_clear_answers(api: Client) -> None:
    status, text = await post(api, b"not an HL7 message", "text/plain")
    assert status == 200
    msa = Message(text).first("MSA")
    assert msa is not None
    assert msa.value(1) == "AE"
    assert (await post(api, CBC, "application/json"))[0] == 415
    assert (await post(api, CBC, "text/plain", {"Authorization": "Bearer emr-key"}))[0] == 403
    assert (await post(api, b"x" * 5_000_000, "text/plain"))[0] == 413


async def test_a_strict_sender_gets_ae_for_a_code_its_tables_do_not_know(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hub.hl7v2.mapping.required.strict_senders", lambda: frozenset({"LIS"}))
    odd = CBC.replace(b"|19850930|M|", b"|19850930|Q|")
    assert odd != CBC
    status, ack = await post(api, odd, "x-application/hl7-v2+er7; charset=utf-8")
    assert status == 200
    assert "MSA|AE|" in ack
    assert "\rERR|" in ack
    assert "|103^Table value not found^HL70357|" in ack
