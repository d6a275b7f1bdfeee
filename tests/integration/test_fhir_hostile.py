"""Hostile and broken FHIR requests, as an outside probe sent them: each gets a clear 4xx with
an OperationOutcome (never a 500, never a plain-text body), and the hub serves the next
request as before."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from yarl import URL

from hub.fhir.settings import FhirSettings
from hub.web.keys import RUNTIME
from store.plan import Write, WriteMode
from tests.fixtures.examples import OBSERVATION
from tests.integration.fhir_api import AUTH, FHIR_JSON, Client, call, new_patient, start_api

pytestmark = pytest.mark.fault  # part of the standing fault suite (-m fault)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Client]:
    settings = FhirSettings(max_body_bytes=4 * 1024 * 1024, max_bundle_entries=50)
    client = await start_api(tmp_path, fhir=settings)
    yield client
    await client.close()


def nested_extension(depth: int) -> str:
    """As JSON text: deeper than the JSON libraries here write."""
    extension = '{"url":"urn:x","valueString":"deep"}'
    for _ in range(depth):
        extension = '{"url":"urn:x","extension":[' + extension + "]}"
    return extension


def patient_text(extension: str) -> str:
    return orjson.dumps(new_patient()).decode()[:-1] + ',"extension":[' + extension + "]}"


async def refused(client: Client, method: str, path: str | URL, **kwargs: Any) -> int:
    """The status of a refusal, after checking it is a 4xx OperationOutcome."""
    headers = {**AUTH, **kwargs.pop("headers", {})}
    url = path if isinstance(path, URL) else f"/fhir/{path}"
    response = await client.request(method, url, headers=headers, **kwargs)
    assert 400 <= response.status < 500, await response.text()
    assert response.content_type == FHIR_JSON
    body = await response.json(content_type=None)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]
    return response.status


@pytest.mark.parametrize(
    "query",
    [
        "Observation?value-quantity=sNaN",
        "Observation?value-quantity=1e999999999",
        "Observation?value-quantity=NaN",
        "Observation?_lastUpdated=gt9999-12-31T23:59:59-14:00",
        "Observation?date=2026-13-45",
        "Observation?date=2026-02-30",
        "Observation?date=0000-01-01",
        "Observation?_include=Foo:bar",
        "Observation?_include=Observation:code",
        "Observation?_revinclude=DiagnosticReport:nothing",
        "Observation?code=" + ",".join(f"c{n}" for n in range(499)),
        "Observation?" + "&".join(f"code=c{n}" for n in range(60)),
        "Observation?_count=-1",
    ],
)
async def test_bad_search_values_are_refused_clearly(hub: Client, query: str) -> None:
    assert await refused(hub, "GET", query) == 400


async def test_a_search_url_over_the_limit_gets_414(hub: Client) -> None:
    long_name = "x" * 20_000  # past the query limit, under the HTTP parser's
    assert await refused(hub, "GET", f"Patient?name={long_name}") == 414
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = f"name={long_name}".encode()
    assert await refused(hub, "POST", "Patient/_search", data=body, headers=form) == 414


async def test_a_search_form_with_invalid_bytes_is_refused(hub: Client) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"name=\xff\xfe\xfa"
    assert await refused(hub, "POST", "Patient/_search", data=body, headers=form) == 400


async def test_deep_nesting_is_refused_before_anything_walks_it(hub: Client) -> None:
    json_body = {"Content-Type": FHIR_JSON}
    patient = patient_text(nested_extension(150))
    assert await refused(hub, "POST", "Patient", data=patient, headers=json_body) == 400
    deep = '{"x":[' * 500 + "1" + "]}" * 500
    entry = '{"request":{"method":"POST","url":"Patient"},"resource":' + patient_text(deep) + "}"
    transaction = '{"resourceType":"Bundle","type":"transaction","entry":[' + entry + "]}"
    assert await refused(hub, "POST", "", data=transaction, headers=json_body) == 400
    moderate = orjson.loads(patient_text(nested_extension(10)))
    status, _, _ = await call(hub, "POST", "Patient", moderate)
    assert status == 201


@pytest.mark.parametrize("id_", [".", ".."])
async def test_dot_ids_are_refused(hub: Client, id_: str) -> None:
    # percent-encoded, the dots reach the FHIR layer as the id (plain dots are resolved away
    # by URL normalisation before routing, and that request gets a 4xx of its own)
    encoded = URL(f"/fhir/Patient/{id_.replace('.', '%2E')}", encoded=True)
    patient = new_patient(id=id_)
    assert await refused(hub, "PUT", encoded, json=patient) == 400
    await refused(hub, "PUT", URL(f"/fhir/Patient/{id_}", encoded=True), json=patient)
    status, _, _ = await call(hub, "GET", "Patient?_summary=count")
    assert status == 200


async def test_revinclude_of_a_thousand_matches_works(hub: Client) -> None:
    resources = hub.app[RUNTIME].resources
    plan = [Write.of(WriteMode.CREATE, {**OBSERVATION, "id": f"o{n}"}) for n in range(1000)]
    await resources.apply(plan)
    status, bundle, _ = await call(
        hub, "GET", "Observation?_count=1000&_revinclude=DiagnosticReport:result"
    )
    assert status == 200
    assert len(bundle["entry"]) == 1000


async def test_bundles_have_limits_on_entries_size_and_time(tmp_path: Path) -> None:
    settings = FhirSettings(max_bundle_entries=20, max_response_bytes=64 * 1024)
    client = await start_api(tmp_path, fhir=settings)
    try:
        for n in range(10):
            await call(client, "PUT", f"Patient/p{n}", new_patient(id=f"p{n}"))
        search = {"request": {"method": "GET", "url": "Patient?_count=10"}}
        too_many = {"resourceType": "Bundle", "type": "batch", "entry": [search] * 21}
        assert await refused(client, "POST", "", json=too_many) == 413
        too_big = {"resourceType": "Bundle", "type": "batch", "entry": [search] * 20}
        assert await refused(client, "POST", "", json=too_big) == 413
        fits = {"resourceType": "Bundle", "type": "batch", "entry": [search] * 2}
        status, answer, _ = await call(client, "POST", "", fits)
        assert status == 200
        assert len(answer["entry"]) == 2
    finally:
        await client.close()
    slow = await start_api(tmp_path / "slow", fhir=FhirSettings(max_request_s=0.000001))
    try:
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [search] * 2}
        assert await refused(slow, "POST", "", json=batch) == 413
    finally:
        await slow.close()


async def test_a_bundle_inside_a_bundle_is_refused(hub: Client) -> None:
    inner = {"resourceType": "Bundle", "type": "batch", "entry": []}
    outer = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "POST", "url": "/"}, "resource": inner}],
    }
    assert await refused(hub, "POST", "", json=outer) == 400
