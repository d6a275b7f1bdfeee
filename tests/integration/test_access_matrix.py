"""Every role and scope, through every path a request can take: alone, as a batch entry, as a
transaction entry; with chains, includes, revincludes, counts and totals; reads and writes.
The answer must be the same whichever path carries the request, and the answers that matter
for privacy are pinned down as well (a screen key never learns about a patient, a patient/
token never counts or reaches another patient)."""

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

from hub.settings import JwtSettings
from hub.web.keys import RUNTIME
from tests.fixtures.examples import ID_CARD, OBSERVATION, PATIENT
from tests.integration.fhir_api import Client, call, start_api

pytestmark = pytest.mark.fault  # part of the standing fault suite (-m fault)

SECRET = "matrix-secret-of-the-emr-gateway-0123456789abcdef"
P2_ID_CARD = "330602198502023340"


def jwt_for(scope: str, **claims: Any) -> str:
    payload = {"sub": "matrix", "exp": int(time.time()) + 600, "scope": scope, **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


CALLERS = {
    "admin-key": "admin-key",
    "clinician-key": "emr-key",
    "system-key": "his-key",
    "ops-key": "ops-key",
    "screen-key": "wall-key",
    "user-read": jwt_for("user/*.read"),
    "user-observation-rs": jwt_for("user/Observation.rs"),
    "system-patient-read": jwt_for("system/Patient.read", role="system"),
    "patient-read": jwt_for("patient/*.read", patient="p1"),
    "patient-all": jwt_for("patient/*.*", patient="p1"),
    "patient-observation": jwt_for("patient/Observation.read", patient="p1"),
}

READS = [
    "Patient/p1",
    "Patient/p2",
    "Observation/o1",
    "Observation/o2",
    "Observation/o1/_history/1",
    "Patient?_summary=count",
    "Observation?_summary=count",
    "Observation?_total=accurate",
    f"Patient?identifier={ID_CARD}|{P2_ID_CARD}",
    f"Observation?_summary=count&subject:Patient.identifier={ID_CARD}|{P2_ID_CARD}",
    "Observation?subject:Patient.name=李四",
    "Observation?subject:Patient.name=李四&_summary=count",
    "Observation?_include=Observation:subject",
    "Observation?_include=Observation:performer:Practitioner",
    "Patient?_revinclude=Observation:subject",
    "DiagnosticReport?_include=DiagnosticReport:result&_include:iterate=Observation:subject",
    "Patient/p1/$everything",
    "Patient/p2/$everything",
    "Observation/o2/$validate",
    "Observation/_history",
    "Patient/p1/_history",
]


def observation(id_: str, patient: str) -> dict[str, Any]:
    return {**OBSERVATION, "id": id_, "subject": {"reference": f"Patient/{patient}"}}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Client]:
    client = await start_api(
        tmp_path,
        api_keys="admin-key:admin,emr-key:clinician,wall-key:screen,ops-key:ops,his-key:system",
        jwt=JwtSettings(hs256_secret=SECRET),
    )
    p2 = {**PATIENT, "id": "p2", "name": [{"text": "李四", "family": "李", "given": ["四"]}]}
    p2["identifier"] = [{"system": ID_CARD, "value": P2_ID_CARD}]
    seeds: list[dict[str, Any]] = [
        {**PATIENT, "id": "p1"},
        p2,
        {"resourceType": "Practitioner", "id": "dr1", "name": [{"text": "王医生"}]},
        observation("o1", "p1"),
        observation("o2", "p2"),
        {
            "resourceType": "DiagnosticReport",
            "id": "r2",
            "status": "final",
            "code": {"text": "血常规"},
            "subject": {"reference": "Patient/p2"},
            "result": [{"reference": "Observation/o2"}],
        },
    ]
    for mode in ("direct", "batch", "transaction"):  # each path writes its own targets
        seeds.append(observation(f"theirs-{mode}", "p2"))
        seeds.append(observation(f"doomed-{mode}", "p1"))
    for resource in seeds:
        status, body, _ = await as_caller(client, "admin-key", "PUT", _url(resource), resource)
        assert status in (200, 201), body
    yield client
    await client.close()


def _url(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


async def as_caller(
    client: Client, caller: str, method: str, path: str, body: Any = None
) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {CALLERS[caller]}"}
    if method == "PATCH":
        headers["Content-Type"] = "application/json-patch+json"
    return await call(client, method, path, body, **headers)


def essence(status: int, body: Any) -> tuple[Any, ...]:
    """What a caller learns from an answer: the status, and for a success the resources
    it names and any total; refusals are compared by status alone."""
    if status >= 400 or not isinstance(body, dict):
        return (status,)
    if body.get("resourceType") == "Bundle":
        named = sorted(
            f"{e['resource']['resourceType']}/{e['resource'].get('id')}"
            for e in body.get("entry", [])
            if e.get("resource", {}).get("resourceType") != "OperationOutcome"
        )
        return status, tuple(named), body.get("total")
    return status, body.get("resourceType"), body.get("id")


def entry_essence(entry: dict[str, Any]) -> tuple[Any, ...]:
    status = int(entry["response"]["status"].split()[0])
    return essence(status, entry.get("resource") or entry["response"].get("outcome"))


def one_entry_bundle(kind: str, method: str, url: str, body: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": method, "url": url}}
    if body is not None:
        if method == "PATCH":
            data = base64.b64encode(orjson.dumps(body)).decode()
            body = {"resourceType": "Binary", "contentType": "application/json-patch+json"}
            body["data"] = data
        entry["resource"] = body
    return {"resourceType": "Bundle", "type": kind, "entry": [entry]}


async def through(
    client: Client, caller: str, mode: str, method: str, url: str, body: Any = None
) -> tuple[Any, ...]:
    """One request by one path, reduced to what the caller learns."""
    if mode == "direct":
        status, answer, _ = await as_caller(client, caller, method, url, body)
        return essence(status, answer)
    bundle = one_entry_bundle(mode, method, url, body)
    status, answer, _ = await as_caller(client, caller, "POST", "", bundle)
    if status != 200:  # a transaction fails as a whole with its entry's status
        assert mode == "transaction", answer
        return (status,)
    return entry_essence(answer["entry"][0])


async def test_every_read_answers_the_same_by_every_path(hub: Client) -> None:
    combinations = differences = 0
    for caller in CALLERS:
        for url in READS:
            answers = {mode: await through(hub, caller, mode, "GET", url) for mode in MODES}
            combinations += 1
            if len(set(answers.values())) != 1:
                differences += 1
                print(f"DIFFERENT {caller} GET {url}: {answers}")
    print(f"access matrix, reads: {combinations} caller x request, {differences} differ by path")
    assert differences == 0


MODES = ("direct", "batch", "transaction")


def writes(mode: str) -> list[tuple[str, str, Any]]:
    """Writes aimed at targets of their own per path, so each path meets the same state."""
    new = {k: v for k, v in observation("x", "p1").items() if k != "id"}
    conditional = {**new, "identifier": [{"system": "urn:matrix", "value": mode}]}
    return [
        ("PUT", f"Observation/mine-{mode}", observation(f"mine-{mode}", "p1")),
        ("PUT", f"Observation/theirs-{mode}", observation(f"theirs-{mode}", "p1")),
        ("POST", "Observation", new),
        ("POST", "Observation", {**new, "subject": {"reference": "Patient/p2"}}),
        ("PUT", f"Observation?identifier=urn:matrix|{mode}", conditional),
        (
            "PATCH",
            f"Observation/doomed-{mode}",
            [{"op": "replace", "path": "/status", "value": "amended"}],
        ),
        ("DELETE", f"Observation/doomed-{mode}", None),
    ]


async def test_every_write_is_allowed_or_refused_alike_by_every_path(
    tmp_path: Path, hub: Client
) -> None:
    combinations = differences = 0
    for caller in CALLERS:
        statuses: dict[str, list[int]] = {}
        for mode in MODES:
            statuses[mode] = [
                (await through(hub, caller, mode, method, url, body))[0]
                for method, url, body in writes(mode)
            ]
        combinations += len(statuses["direct"])
        for position, direct in enumerate(statuses["direct"]):
            others = {statuses[mode][position] for mode in MODES}
            if len(others) != 1:
                differences += 1
                print(f"DIFFERENT {caller} write #{position}: {statuses}, direct {direct}")
    print(f"access matrix, writes: {combinations} caller x request, {differences} differ by path")
    assert differences == 0


async def test_what_each_caller_may_learn(hub: Client) -> None:
    """The answers themselves, for the callers the outside probe used."""
    by_id = f"Observation?_summary=count&subject:Patient.identifier={ID_CARD}|{P2_ID_CARD}"
    for mode in MODES:
        assert await through(hub, "screen-key", mode, "GET", "Patient/p1") == (403,)
        assert await through(hub, "screen-key", mode, "GET", by_id) == (403,)
        assert await through(hub, "ops-key", mode, "GET", "Patient?_summary=count") == (403,)
        assert await through(hub, "user-read", mode, "DELETE", "Observation/o1") == (403,)
        assert (await through(hub, "patient-read", mode, "GET", by_id))[2] == 0
        assert (await through(hub, "clinician-key", mode, "GET", by_id))[2] == 4  # o2, theirs-*
        count = await through(hub, "patient-read", mode, "GET", "Patient?_summary=count")
        assert count[2] == 1
        own = await through(hub, "patient-read", mode, "GET", "Observation?_total=accurate")
        assert own[2] == len(own[1])
        assert all(name != "Observation/o2" for name in own[1])
        assert await through(hub, "patient-read", mode, "GET", "Patient/p2/$everything") == (403,)
        everything = await through(
            hub, "patient-observation", mode, "GET", "Patient/p1/$everything"
        )
        assert everything[0] == 403  # no Patient scope at all
        included = await through(
            hub, "user-observation-rs", mode, "GET", "Observation?_include=Observation:subject"
        )
        assert not any(name.startswith("Patient/") for name in included[1])
        chained = await through(
            hub, "patient-read", mode, "GET", "Observation?subject:Patient.name=李四"
        )
        assert chained[1] == ()


async def test_a_patient_token_cannot_take_over_another_patients_resource(hub: Client) -> None:
    for mode in MODES:
        stolen = observation(f"theirs-{mode}", "p1")
        assert await through(hub, "patient-all", mode, "PUT", _url(stolen), stolen) == (403,)
        _, kept, _ = await as_caller(hub, "admin-key", "GET", _url(stolen))
        assert kept["subject"]["reference"] == "Patient/p2"


async def test_each_bundle_entry_leaves_its_own_audit_event(hub: Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/p1"}},
            {"request": {"method": "GET", "url": "Patient/p2"}},
        ],
    }
    status, answer, _ = await as_caller(hub, "patient-read", "POST", "", bundle)
    assert status == 200
    assert [e["response"]["status"][:3] for e in answer["entry"]] == ["200", "403"]
    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "request": {"method": "PUT", "url": "Observation/tx-ok"},
                "resource": observation("tx-ok", "p1"),
            },
            {
                "request": {"method": "PUT", "url": "Observation/o2"},
                "resource": observation("o2", "p1"),
            },
        ],
    }
    status, _, _ = await as_caller(hub, "patient-all", "POST", "", failing)
    assert status == 403
    trail = hub.app[RUNTIME].audit
    assert trail is not None
    await trail.flush()  # the trail writes in batches: flushing makes the check deterministic
    _, events, _ = await as_caller(
        hub, "admin-key", "GET", "AuditEvent?agent-name=matrix&_count=100"
    )
    found: dict[str, list[str]] = {}
    for entry in events["entry"]:
        event = entry["resource"]
        what = event.get("entity", [{}])[0].get("what", {}).get("reference")
        if what:
            found.setdefault(what, []).append(event["outcome"])
    assert found["Patient/p1"] == ["0"]
    assert found["Patient/p2"] == ["4"]
    assert found["Observation/tx-ok"] == ["4"]  # rolled back with the transaction
    assert found["Observation/o2"] == ["4"]
