"""Every FHIR interaction leaves an AuditEvent (who, what, when, outcome) that is itself
searchable, and valid R4."""

from typing import Any

from fhir_profiles.validation import validate
from hub.web.keys import RUNTIME
from tests.integration.fhir_api import Client, call, new_patient

OPS = {"Authorization": "Bearer ops-key"}


async def audit_trail(api: Client, query: str = "") -> list[dict[str, Any]]:
    """The trail as the API shows it, once what the hub buffered is written."""
    audit = api.app[RUNTIME].audit
    assert audit is not None
    await audit.flush()
    status, bundle, _ = await call(api, "GET", f"AuditEvent?_count=100{query}", **OPS)
    assert status == 200
    return [entry["resource"] for entry in bundle.get("entry", [])]


async def test_reads_searches_writes_and_refusals_are_audited(api: Client) -> None:
    _, created, _ = await call(api, "POST", "Patient", new_patient())
    await call(api, "GET", f"Patient/{created['id']}")
    await call(api, "GET", "Patient?name=张")
    await call(api, "POST", "Patient", {**new_patient(), "gender": "robot"})
    await call(api, "GET", "Patient/p1", Authorization="Bearer wall-key")  # refused by scope
    audit = api.app[RUNTIME].audit
    assert audit is not None
    await audit.flush()  # what the trail's next batch would write a quarter second later
    events = await audit_trail(api, "&_sort=date")
    summary = [
        (e["subtype"][0]["code"], e["action"], e["outcome"], e["agent"][0]["name"]) for e in events
    ]
    assert summary[:5] == [
        ("create", "C", "0", "api-key:clinician"),
        ("read", "R", "0", "api-key:clinician"),
        ("search-type", "E", "0", "api-key:clinician"),
        ("create", "C", "4", "api-key:clinician"),
        ("read", "R", "4", "api-key:screen"),
    ]
    assert events[1]["entity"][0]["what"] == {"reference": f"Patient/{created['id']}"}
    assert events[0]["entity"][0]["what"] == {"reference": f"Patient/{created['id']}"}
    assert "query" in events[2]["entity"][0]
    assert all(validate(event) == [] for event in events)

    mine = await audit_trail(api, "&agent-name=api-key:screen")
    assert len(mine) == 1
    about = await audit_trail(api, f"&entity=Patient/{created['id']}")
    assert {e["subtype"][0]["code"] for e in about} == {"create", "read"}
