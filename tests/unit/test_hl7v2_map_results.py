"""ORU^R01 specimens: a lab result without SPM still has its tube (collection from OBR-7,
receipt from OBR-14, the lab's turnaround clock starts there), the same Specimen its order
made; an imaging report has none."""

import json
from pathlib import Path
from typing import Any

from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message

CORPUS = Path(__file__).parents[1] / "data" / "hl7"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))


def mapped(prefix: str) -> list[dict[str, Any]]:
    entry = next(e for e in MANIFEST if e["file"].startswith(prefix))
    text = (CORPUS / entry["file"]).read_bytes().decode(entry["charset"])
    return normalize(Message(text, entry["charset"])).resources


def of(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == kind]


def test_a_lab_result_without_spm_has_its_tube_from_obr() -> None:
    resources = mapped("19-")
    (specimen,) = of(resources, "Specimen")
    assert specimen["collection"]["collectedDateTime"] == "2026-03-05T08:45:00+08:00"
    assert specimen["receivedTime"] == "2026-03-05T09:02:10+08:00"
    (report,) = of(resources, "DiagnosticReport")
    assert report["specimen"] == [{"reference": f"Specimen/{specimen['id']}"}]
    assert all(
        o["specimen"] == {"reference": f"Specimen/{specimen['id']}"}
        for o in of(resources, "Observation")
    )
    assert specimen["request"] == [{"reference": report["basedOn"][0]["reference"]}]


def test_the_order_and_its_result_share_the_tube() -> None:
    order_tubes = {s["id"] for s in of(mapped("14-"), "Specimen")}
    result_tubes = {s["id"] for s in of(mapped("19-"), "Specimen")}
    assert order_tubes & result_tubes


def test_an_imaging_report_has_no_specimen() -> None:
    assert of(mapped("35-"), "Specimen") == []
