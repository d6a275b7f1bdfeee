"""``jianhu trace``: one message or request followed through the hub by its correlation id.

An ORU^R01 with a critical potassium arrives over ``POST /hl7v2``: the answer names its archive
id, and the trace shows it received and archived, the versions it wrote (with the id in their
``meta.source``), their events, and the critical-value alert with every step up to its
acknowledgement. A stay's HL7 messages are followed to the DRG submissions built from them,
with the platform's answers. A FHIR API request is traced by the id its caller gave. Looking at
a trace is audited; an id that matches nothing says so."""

import asyncio
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from adapters.drg import interfaces as drg
from hub.base.correlation import SOURCE_PREFIX
from hub.cli.main import main
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from store.resources import AuditFilter
from tests.integration.fhir_api import AUTH, Client, call, new_patient, start_api
from tests.integration.test_drg_end_to_end import report, rig, send  # noqa: F401 (a fixture)
from tests.integration.test_first_hour import JIANHU
from tests.integration.test_lab_feed import CORPUS, CRITICAL_K, SYSTEM, lab_of
from tests.unit.test_drg_documents import ADMISSION, CHARGES, discharge_message, text_of

OPS = {"Authorization": "Bearer ops-key"}
ACK = {
    "by": {"number": "0499", "name": "梁思远"},
    "clinician": {"number": "2107", "name": "王芳"},
    "read_back": "钾6.8",
}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Client]:
    api = await start_api(tmp_path, consume=True)
    yield api
    await api.close()


async def traced(api: Client, id: str) -> dict[str, Any]:
    response = await api.get(f"/ops/trace/{id}", headers=OPS)
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def test_an_oru_is_traced_to_its_versions_events_and_critical_alert(
    hub: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hub")
    response = await hub.post("/hl7v2", data=(CORPUS / CRITICAL_K).read_bytes(), headers=SYSTEM)
    assert response.status == 200
    archive_id = response.headers["X-Correlation-ID"]
    lab = lab_of(hub)
    await hub.app[RUNTIME].settle()
    (alert,) = lab.view.overview()["critical"]
    # the log lines of its work name it: the publish, each queue's ack, the events' publish
    its_lines = [r for r in caplog.records if getattr(r, "correlation_id", None) == archive_id]
    acked_on = {r.queue for r in its_lines if getattr(r, "event", "") == "acked"}  # type: ignore[attr-defined]
    assert {"hl7v2.normalizer", "lab.fhir"} <= acked_on
    assert any(getattr(r, "routing_key", "").startswith("fhir.") for r in its_lines)
    acked = await hub.post(f"/lab/critical/{alert['id']}/ack", json=ACK, headers=AUTH)
    assert acked.status == 200, await acked.text()

    found = await traced(hub, archive_id)
    message = found["message"]
    assert (message["id"], message["type"], message["status"]) == (archive_id, "ORU^R01", "stored")
    assert message["acknowledged"] == "CA"  # the sender asked for enhanced mode
    references = [v["reference"] for v in found["versions"]]
    observations = [r for r in references if r.startswith("Observation/")]
    assert observations
    assert any(r.startswith("Patient/") for r in references)
    assert {"routing_key": "fhir.Observation.created", "versions": len(observations)} in found[
        "events"
    ]
    stored = await hub.app[RUNTIME].resources.read(*observations[0].split("/")[:2])
    source = orjson.loads(stored.body or b"{}")["meta"]["source"]
    assert source == f"{SOURCE_PREFIX}LIS#{archive_id}"  # MSH-3 of the corpus message
    (shown,) = found["alerts"]
    assert shown["alert"] == alert["id"]
    steps = [step["step"] for step in shown["steps"]]
    assert steps[0] == "raised"
    assert "acknowledged" in steps
    assert any(s["by"] == "梁思远" for s in shown["steps"])
    assert found["submissions"] == []

    by_control_id = await traced(hub, message["control_id"])
    assert by_control_id["correlation_id"] == archive_id

    # the same from the command line, on the data the hub is running on
    data = {"JIANHU_DATA_DIR": str(hub.app[RUNTIME].settings.data_dir)}
    command = [str(JIANHU), "trace", archive_id]
    done = await asyncio.to_thread(
        subprocess.run, command, env=environment(data), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"archived   {archive_id}  status stored" in done.stdout
    assert f"  {observations[0]}  created" in done.stdout
    assert "event      fhir.Observation.created" in done.stdout
    assert f"critical value {alert['id']}" in done.stdout


def environment(more: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JIANHU_")} | more


async def test_a_stay_is_traced_to_the_drg_submissions_and_their_answers(
    rig: tuple[Client, Any],  # noqa: F811
) -> None:
    hub, _ = rig
    courier = hub.app[RUNTIME].courier
    registered = await courier.submit("drg", drg.ORG_REGIST, "O1", {"ORG_NAME": "绍兴某医院"})
    assert registered.status == "accepted"
    discharge = discharge_message()
    await send(hub, text_of(ADMISSION), text_of(CHARGES), discharge)
    await report(hub)
    archive = hub.app[RUNTIME].archive
    by_type = {m.message_type: m.id for m in await archive.search(ArchiveQuery(limit=20))}
    found = await traced(hub, by_type["ADT^A03"])
    interfaces = {s["interface"] for s in found["submissions"]}
    assert interfaces == {drg.FRONT_PAGE, drg.SETTLEMENT_LIST, drg.FEE_DETAILS}
    for submission in found["submissions"]:
        assert submission["status"] == "accepted"
        assert submission["answer"]  # the platform's answer to the last attempt
    charges = await traced(hub, by_type["DFT^P03"])
    assert {s["id"] for s in charges["submissions"]} == {s["id"] for s in found["submissions"]}


async def test_a_fhir_request_is_traced_by_the_id_its_caller_gave(hub: Client) -> None:
    status, body, headers = await call(
        hub, "POST", "Patient", new_patient(), **{"X-Request-ID": "emr-req-20261203-0001"}
    )
    assert status == 201
    assert headers["X-Correlation-ID"] == "emr-req-20261203-0001"
    assert body["meta"]["source"].endswith("#emr-req-20261203-0001")
    found = await traced(hub, "emr-req-20261203-0001")
    assert found["message"] is None
    assert [v["reference"] for v in found["versions"]] == [f"Patient/{body['id']}/_history/1"]

    assert [v["by"] for v in found["versions"]] == ["api-key-clinician"]  # who wrote it
    (created,) = found["requests"]  # the call itself, from its AuditEvent
    assert (created["interaction"], created["by"], created["outcome"]) == (
        "create",
        "api-key:clinician",
        "0",
    )
    # a read writes nothing, and is traced all the same
    await call(hub, "GET", f"Patient/{body['id']}", **{"X-Request-ID": "emr-read-1"})
    (read,) = (await traced(hub, "emr-read-1"))["requests"]
    assert (read["interaction"], read["what"]) == ("read", f"Patient/{body['id']}")

    for unusable in ("not usable / as an id", "01a23d6b-57f4-7d3c-9a51-23b8c2d4e5f6"):
        status, _, headers = await call(
            hub, "POST", "Patient", new_patient(), **{"X-Request-ID": unusable}
        )
        assert status == 201
        # a new id instead; the second has the hub's own form: another message's archive id
        assert headers["X-Correlation-ID"] != unusable

    await hub.app[RUNTIME].audit.flush()
    audit = hub.app[RUNTIME].resources.audit
    looked = await audit.search([AuditFilter("subtype", "=", "trace")], 10, None, False)
    event, _ = [orjson.loads(v.body or b"{}") for v in looked.items]  # two traces looked at
    assert event["agent"][0]["name"] == "api-key:ops"
    assert event["entity"][0]["what"]["reference"] == f"Patient/{body['id']}"


async def test_an_unknown_id_is_a_404_and_a_bad_one_a_400(hub: Client) -> None:
    response = await hub.get("/ops/trace/no-such-id", headers=OPS)
    assert response.status == 404
    assert "nothing has the id" in (await response.json())["issue"][0]["diagnostics"]
    response = await hub.get("/ops/trace/LIS%202026/03%237", headers=OPS)  # a control id
    assert response.status == 404  # looked up, not refused
    response = await hub.get("/ops/trace/" + "x" * 201, headers=OPS)
    assert response.status == 400
    response = await hub.get("/ops/trace/no-such-id", headers=AUTH)
    assert response.status == 403  # a clinician's key is not an operator's


def test_the_cli_says_when_nothing_is_found(tmp_path: Path) -> None:
    env = {"JIANHU_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["trace", "no-such-id"], env=env)
    assert result.exit_code == 1
    assert "nothing found" in result.output
    result = CliRunner().invoke(main, ["trace", "x" * 201], env=env)
    assert result.exit_code == 2
    assert "not an id" in result.output


async def test_a_path_or_method_the_hub_does_not_have_is_an_operation_outcome(
    hub: Client,
) -> None:
    """The router's own refusals look like every other error, not aiohttp's plain text."""
    for method, path, status in (
        ("GET", "/no-such-path", 404),
        ("GET", "/ops/trace/", 404),
        ("DELETE", "/healthz", 405),
    ):
        response = await hub.request(method, path, headers=OPS)
        assert response.status == status
        assert response.content_type == "application/fhir+json"
        outcome = await response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert path in outcome["issue"][0]["diagnostics"]
    response = await hub.delete("/healthz")
    assert "GET" in response.headers["Allow"]  # what the path does take
