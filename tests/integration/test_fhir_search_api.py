"""Search, paging, includes, transactions and operations through the FHIR API over HTTP."""

from typing import Any

from aiohttp import FormData

from hub.fhir.terminology_seed import code_systems
from hub.web.keys import RUNTIME
from tests.fixtures.examples import ID_CARD, OBSERVATION, PATIENT
from tests.integration.fhir_api import AUTH, Client, call, count_of, new_patient


async def seed(api: Client, patients: int = 5) -> list[str]:
    """Patients with one haemoglobin Observation each; returns the patient ids."""
    ids = []
    for number in range(patients):
        patient = new_patient(
            identifier=[{"system": "urn:jianhu:sid:visit-card", "value": f"JZK{number:04d}"}],
            birthDate=f"19{80 + number}-05-01",
            name=[{"text": f"患者{number}", "family": "王", "given": [f"{number}"]}],
        )
        _, created, _ = await call(api, "POST", "Patient", patient)
        ids.append(created["id"])
        observation = {
            **{k: v for k, v in OBSERVATION.items() if k != "id"},
            "subject": {"reference": f"Patient/{created['id']}"},
            "valueQuantity": {**OBSERVATION["valueQuantity"], "value": 120 + number},
        }
        await call(api, "POST", "Observation", observation)
    return ids


async def search(api: Client, query: str) -> dict[str, Any]:
    status, bundle, _ = await call(api, "GET", query)
    assert status == 200, bundle
    assert bundle["type"] == "searchset"
    return dict(bundle)


def match_ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == mode]


async def test_search_by_identifier_get_and_post(api: Client) -> None:
    ids = await seed(api)
    bundle = await search(api, "Patient?identifier=urn:jianhu:sid:visit-card|JZK0003")
    assert match_ids(bundle) == [ids[3]]
    assert bundle["total"] == 1
    assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/Patient/{ids[3]}")
    form = FormData({"identifier": "JZK0001"})
    response = await api.post("/fhir/Patient/_search", data=form, headers=AUTH)
    posted = await response.json(content_type=None)
    assert match_ids(posted) == [ids[1]]


async def test_paging_follows_next_links_to_every_result_once(api: Client) -> None:
    ids = await seed(api, patients=7)
    url = "Patient?_count=3&_sort=-birthdate"
    seen: list[str] = []
    while url:
        bundle = await search(api, url)
        seen += match_ids(bundle)
        # a total is given only when it is known for free (all on the first page) or asked for
        assert "total" not in bundle
        next_links = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = next_links[0].split("/fhir/", 1)[1] if next_links else ""
    assert seen == list(reversed(ids))  # born 1980 .. 1986, newest first


async def test_includes_revincludes_and_shaping(api: Client) -> None:
    ids = await seed(api, patients=2)
    bundle = await search(api, "Observation?_include=Observation:subject&value-quantity=121")
    assert match_ids(bundle, "include") == [ids[1]]
    bundle = await search(api, f"Patient?_id={ids[0]}&_revinclude=Observation:subject")
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [r["resourceType"] for r in included] == ["Observation"]
    doctor = {"resourceType": "Practitioner", "id": "dr1", "name": [{"text": "李医生"}]}
    await call(api, "PUT", "Practitioner/dr1", doctor)
    revinclude = f"Patient?_id={ids[0]}&_revinclude=Observation:subject"
    bundle = await search(api, f"{revinclude}&_include=Observation:performer")
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Patient", "Observation"}
    bundle = await search(api, f"{revinclude}&_include:iterate=Observation:performer")
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert types == {"Patient", "Observation", "Practitioner"}

    bundle = await search(api, "Observation?_summary=count")
    assert (bundle["total"], bundle["entry"]) == (2, [])
    bundle = await search(api, "Patient?_elements=birthDate&_total=accurate")
    first = bundle["entry"][0]["resource"]
    assert set(first) == {"resourceType", "id", "meta", "birthDate"}
    assert first["meta"]["tag"][-1]["code"] == "SUBSETTED"
    assert bundle["total"] == 2
    bundle = await search(api, "Patient?_summary=true")
    assert "birthDate" in bundle["entry"][0]["resource"]
    assert "contact" not in bundle["entry"][0]["resource"]


async def test_unknown_parameters_and_injection_attempts(api: Client) -> None:
    await seed(api, patients=2)
    bundle = await search(api, "Patient?shoe-size=42&name[$ne]=x")
    assert len(match_ids(bundle)) == 2
    outcome = next(e for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert "shoe-size" in outcome["resource"]["issue"][0]["diagnostics"]
    status, refused, _ = await call(api, "GET", "Patient?shoe-size=42", Prefer="handling=strict")
    assert (status, refused["resourceType"]) == (400, "OperationOutcome")
    status, _, _ = await call(api, "GET", 'Patient?birthdate={"$gt":""}')
    assert status == 400
    bundle = await search(api, "Patient?name=$regex")
    assert match_ids(bundle) == []


async def test_chained_and_composite_search(api: Client) -> None:
    await seed(api, patients=3)
    bundle = await search(
        api, "Observation?subject:Patient.identifier=urn:jianhu:sid:visit-card|JZK0002"
    )
    assert len(match_ids(bundle)) == 1
    bundle = await search(api, "Observation?code-value-quantity=http://loinc.org|718-7$ge121")
    assert len(match_ids(bundle)) == 2


def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


async def test_transaction_resolves_urn_uuid_and_is_atomic(api: Client) -> None:
    patient_url = "urn:uuid:0b9f6a0e-8f1b-4c1e-9d2a-5b3f1c2d4e5f"
    observation = {k: v for k, v in OBSERVATION.items() if k != "id"}
    bundle = transaction(
        {
            "fullUrl": patient_url,
            "resource": new_patient(),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "resource": {**observation, "subject": {"reference": patient_url}},
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    status, result, _ = await call(api, "POST", "", bundle)
    assert status == 200, result
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    patient_id = result["entry"][0]["resource"]["id"]
    assert result["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"

    failing = transaction(
        {"resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {**observation, "status": "not-a-status"},
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    status, outcome, _ = await call(api, "POST", "", failing)
    assert status == 422
    assert "Bundle.entry[1]" in outcome["issue"][0]["diagnostics"]
    assert await count_of(api, "Patient") == 1
    assert await count_of(api, "Observation") == 1


async def test_transaction_conditional_references_and_batch(api: Client) -> None:
    _, patient, _ = await call(api, "POST", "Patient", new_patient())
    observation = {k: v for k, v in OBSERVATION.items() if k != "id"}
    reference = f"Patient?identifier={ID_CARD}|330602199001011231"
    bundle = transaction(
        {
            "resource": {**observation, "subject": {"reference": reference}},
            "request": {"method": "POST", "url": "Observation"},
        },
        {
            "resource": new_patient(gender="female"),
            "request": {"method": "PUT", "url": f"Patient?identifier={ID_CARD}|330602199001011231"},
        },
    )
    status, result, _ = await call(api, "POST", "", bundle)
    assert status == 200, result
    assert result["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{patient['id']}"
    assert result["entry"][1]["resource"]["id"] == patient["id"]
    assert result["entry"][1]["resource"]["gender"] == "female"

    batch = transaction(
        {"resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {**PATIENT, "gender": "robot"},
            "request": {"method": "POST", "url": "Patient"},
        },
        {"request": {"method": "GET", "url": f"Patient/{patient['id']}"}},
        kind="batch",
    )
    status, result, _ = await call(api, "POST", "", batch)
    assert status == 200
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "200 OK"]
    assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert await count_of(api, "Patient") == 2


async def test_everything_validate_lookup_translate(api: Client) -> None:
    ids = await seed(api, patients=2)
    status, bundle, _ = await call(api, "GET", f"Patient/{ids[0]}/$everything")
    assert status == 200
    types = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert types == ["Observation", "Patient"]

    status, outcome, _ = await call(api, "POST", "Patient/$validate", {**PATIENT, "gender": "x"})
    assert status == 200
    assert outcome["issue"][0]["code"] == "code-invalid"
    assert await count_of(api, "Patient") == 2

    # the Chinese code tables are in the store from the first start
    sex = next(c for c in code_systems() if c["id"] == "gb-t-2261-1-sex")
    status, stored, _ = await call(api, "GET", f"CodeSystem/{sex['id']}")
    assert (status, stored["url"]) == (200, sex["url"])
    status, result, _ = await call(api, "GET", f"CodeSystem/$lookup?system={sex['url']}&code=2")
    assert status == 200
    assert {"name": "display", "valueString": "女性"} in result["parameter"]
    status, _, _ = await call(api, "GET", f"CodeSystem/$lookup?system={sex['url']}&code=7")
    assert status == 404

    concept_map = {
        "resourceType": "ConceptMap",
        "id": "sex-to-fhir",
        "url": "urn:jianhu:conceptmap:sex-to-fhir",
        "status": "active",
        "group": [
            {
                "source": sex["url"],
                "target": "http://hl7.org/fhir/administrative-gender",
                "element": [
                    {"code": "2", "target": [{"code": "female", "equivalence": "equivalent"}]}
                ],
            }
        ],
    }
    await call(api, "PUT", "ConceptMap/sex-to-fhir", concept_map)
    status, result, _ = await call(api, "GET", f"ConceptMap/$translate?system={sex['url']}&code=2")
    assert status == 200
    assert result["parameter"][0] == {"name": "result", "valueBoolean": True}
    match = result["parameter"][1]["part"]
    assert {
        "name": "concept",
        "valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "female"},
    } in match


async def test_terminology_is_cached_and_a_write_through_the_api_is_seen_at_once(
    api: Client,
) -> None:
    sex = next(c for c in code_systems() if c["id"] == "gb-t-2261-1-sex")
    lookup = f"CodeSystem/$lookup?system={sex['url']}&code=2"
    assert {"name": "display", "valueString": "女性"} in (await call(api, "GET", lookup))[1][
        "parameter"
    ]
    # written behind the API's back (as another process would): the cache still answers
    resources = api.app[RUNTIME].resources
    renamed = [{**c, "display": "女"} if c["code"] == "2" else c for c in sex["concept"]]
    await resources.update({**sex, "concept": renamed})
    assert {"name": "display", "valueString": "女性"} in (await call(api, "GET", lookup))[1][
        "parameter"
    ]
    # written through the API: seen by the next look-up
    _, current, _ = await call(api, "GET", f"CodeSystem/{sex['id']}")
    renamed = [{**c, "display": "女(性)"} if c["code"] == "2" else c for c in sex["concept"]]
    status, _, _ = await call(
        api, "PUT", f"CodeSystem/{sex['id']}", {**current, "concept": renamed}
    )
    assert status == 200
    assert {"name": "display", "valueString": "女(性)"} in (await call(api, "GET", lookup))[1][
        "parameter"
    ]
    # the cache never answers a caller the operation is not for
    status, _, _ = await call(api, "GET", lookup, Authorization="Bearer wall-key")
    assert status == 403


async def test_history_type_and_system_with_paging(api: Client) -> None:
    await seed(api, patients=3)
    status, bundle, _ = await call(api, "GET", "Patient/_history?_count=2")
    assert (status, bundle["type"], len(bundle["entry"])) == (200, "history", 2)
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    status, rest, _ = await call(api, "GET", next_url.split("/fhir/", 1)[1])
    assert len(rest["entry"]) == 1
    status, everything, _ = await call(api, "GET", "_history?_count=100")
    types = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert (types.count("Patient"), types.count("Observation")) == (3, 3)
    assert types[:6] == ["Observation", "Patient"] * 3  # newest first
