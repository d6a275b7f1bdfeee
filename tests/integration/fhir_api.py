"""Helpers for the FHIR API tests: a hub on a loopback port and a small JSON caller."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from hub.fhir.settings import FhirSettings
from hub.runtime import Runtime
from hub.settings import load_settings
from hub.web.app import make_app
from hub.web.keys import RUNTIME
from tests.fixtures.examples import PATIENT

AUTH = {"Authorization": "Bearer emr-key"}
FHIR_JSON = "application/fhir+json"

Client = TestClient[Any, Any]


async def start_api(
    tmp_path: Path,
    consume: bool = False,
    bus_clock: Callable[[], float] = time.time,
    **overrides: Any,
) -> Client:
    settings = load_settings(
        **{
            "data_dir": tmp_path,
            "api_keys": "emr-key:clinician,wall-key:screen,ops-key:ops,his-key:system",
            "fhir": FhirSettings(max_body_bytes=64 * 1024),
            **overrides,
        }
    )
    runtime = Runtime(settings, bus_clock=bus_clock)
    client = TestClient(TestServer(make_app(runtime, consume=consume)))
    await client.start_server()
    return client


def new_patient(**changes: Any) -> dict[str, Any]:
    patient = {key: value for key, value in PATIENT.items() if key != "id"}
    return {**patient, **changes}


async def call(
    api: Client, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, Any, Any]:
    """(status, JSON body or None, response headers)."""
    response = await api.request(method, f"/fhir/{path}", json=body, headers={**AUTH, **headers})
    text = await response.text()
    data = None
    if text:
        assert response.content_type == FHIR_JSON, text
        data = await response.json(content_type=None)
    return response.status, data, response.headers


async def count_of(api: Client, type_: str) -> int:
    _, bundle, _ = await call(api, "GET", f"{type_}?_summary=count")
    total: int = bundle["total"]
    return total


async def settle(api: Client) -> None:
    """Until the hub has handled everything due, and what that caused (``Runtime.settle``)."""
    await api.app[RUNTIME].settle()
