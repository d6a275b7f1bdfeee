"""Bearer tokens on the FHIR API: JWTs (HS256, RS256) with SMART scopes, the patient
compartment for patient/ scopes, and refusals as OperationOutcomes."""

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.settings import JwtSettings
from tests.fixtures.examples import OBSERVATION, PATIENT
from tests.integration.fhir_api import Client, call, start_api

SECRET = "a-long-test-secret-of-the-emr-gateway-0123456789"
ISSUER = "https://sso.hospital.example"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def secured(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Client]:
    public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = JwtSettings(
        hs256_secret=SECRET, rs256_public_key=public.decode(), issuer=ISSUER, audience="jianhu"
    )
    client = await start_api(tmp_path, jwt=settings)
    for patient_id in ("p1", "p2"):
        await call(client, "PUT", f"Patient/{patient_id}", {**PATIENT, "id": patient_id})
        observation = {**OBSERVATION, "id": f"o-{patient_id}"}
        observation["subject"] = {"reference": f"Patient/{patient_id}"}
        await call(client, "PUT", f"Observation/o-{patient_id}", observation)
    yield client
    await client.close()


def token(scope: str, key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    payload = {
        "sub": "dr-wang",
        "iss": ISSUER,
        "aud": "jianhu",
        "exp": int(time.time()) + 300,
        "scope": scope,
        **claims,
    }
    return jwt.encode(payload, key, algorithm=algorithm)


async def as_(client: Client, bearer: str, method: str, path: str, body: Any = None) -> int:
    status, outcome, _ = await call(client, method, path, body, Authorization=f"Bearer {bearer}")
    if status >= 400:
        assert outcome["resourceType"] == "OperationOutcome"
    return status


async def test_user_scopes_limit_types_and_actions(secured: Client) -> None:
    reader = token("openid user/Patient.read")
    assert await as_(secured, reader, "GET", "Patient/p1") == 200
    assert await as_(secured, reader, "GET", "Observation/o-p1") == 403
    assert await as_(secured, reader, "POST", "Patient", {**PATIENT, "id": None}) == 403
    v2 = token("user/Observation.rs user/Patient.cu")
    assert await as_(secured, v2, "GET", "Observation?subject=Patient/p1") == 200
    assert await as_(secured, v2, "PUT", "Patient/p1", PATIENT | {"id": "p1"}) == 200
    assert await as_(secured, v2, "DELETE", "Patient/p1") == 403


async def test_bad_tokens_are_refused(secured: Client, rsa_key: rsa.RSAPrivateKey) -> None:
    everything = "user/*.*"
    assert await as_(secured, token(everything, key="wrong-secret-" * 4), "GET", "Patient") == 401
    expired = token(everything, exp=int(time.time()) - 3600)
    assert await as_(secured, expired, "GET", "Patient") == 401
    foreign = token(everything, iss="https://elsewhere.example")
    assert await as_(secured, foreign, "GET", "Patient") == 401
    claims = {"sub": "x", "exp": int(time.time()) + 60}
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    assert await as_(secured, unsigned, "GET", "Patient") == 401
    assert await as_(secured, token(everything, role="pharaoh"), "GET", "Patient") == 401
    signed_rs256 = token(everything, key=rsa_key, algorithm="RS256")
    assert await as_(secured, signed_rs256, "GET", "Patient/p1") == 200


async def test_patient_scopes_see_only_their_patient(secured: Client) -> None:
    own = token("patient/*.read", patient="p1")
    assert await as_(secured, own, "GET", "Patient/p1") == 200
    assert await as_(secured, own, "GET", "Patient/p2") == 403
    assert await as_(secured, own, "GET", "Observation/o-p2") == 403
    status, bundle, _ = await call(secured, "GET", "Observation", Authorization=f"Bearer {own}")
    assert status == 200
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["o-p1"]
    assert await as_(secured, own, "GET", "Patient/p1/_history") == 403

    writer = token("patient/Observation.write patient/Observation.read", patient="p1")
    mine = {k: v for k, v in OBSERVATION.items() if k != "id"} | {
        "subject": {"reference": "Patient/p1"}
    }
    theirs = mine | {"subject": {"reference": "Patient/p2"}}
    assert await as_(secured, writer, "POST", "Observation", mine) == 201
    assert await as_(secured, writer, "POST", "Observation", theirs) == 403
    unbound = token("patient/*.read")  # a patient scope without a patient claim reaches nobody
    assert await as_(secured, unbound, "GET", "Patient/p1") == 403


async def test_api_key_roles_map_to_scopes(secured: Client) -> None:
    assert await as_(secured, "ops-key", "GET", "Patient/p1") == 403
    assert await as_(secured, "ops-key", "GET", "AuditEvent") == 200
    assert await as_(secured, "wall-key", "GET", "Observation/o-p1") == 200
    assert await as_(secured, "wall-key", "GET", "Patient/p1") == 403
