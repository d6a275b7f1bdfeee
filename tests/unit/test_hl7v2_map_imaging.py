"""Imaging: the ImagingStudy of a PACS report and of an imaging order, field by field, with the
corpus's messages in the PACS's and the EMR's style; the order, the study and the report meet on
one ImagingStudy by the accession number."""

from tests.unit.corpus import corpus, one

DICOM = "http://dicom.nema.org/resources/ontology/DCM"
UID = "urn:oid:1.2.156.112605.14038005400001.20261203.110000.52"


def test_a_chinese_pacs_report_has_its_study_by_the_filler_number() -> None:
    resources = corpus("35-")
    study, report = one(resources, "ImagingStudy"), one(resources, "DiagnosticReport")
    assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{study['id']}"}]
    (accession,) = study["identifier"]
    assert (accession["system"], accession["value"]) == (
        "urn:jianhu:sid:accession:pacs",
        "CT260305021",
    )
    assert accession["type"]["coding"][0]["code"] == "ACSN"
    assert study["modality"] == [{"system": DICOM, "code": "CT"}]
    assert (study["status"], study["started"]) == ("available", "2026-03-05T10:15:33+08:00")
    assert study["basedOn"] == report["basedOn"]  # the EMR's order JC2603050077
    assert study["procedureCode"][0]["coding"][0]["code"] == "210300001-CT"
    (reader,) = study["interpreter"]
    assert reader["display"] == "冯国栋"
    assert reader["reference"].startswith("Practitioner/")


def test_the_order_the_study_and_the_report_meet_by_the_accession_number() -> None:
    ordered = corpus("52-")
    planned = one(ordered, "ImagingStudy")
    assert planned["status"] == "registered"
    assert {"system": "urn:dicom:uid", "value": UID} in planned["identifier"]
    assert planned["basedOn"] == [
        {"reference": f"ServiceRequest/{one(ordered, 'ServiceRequest')['id']}"}
    ]
    assert "specimen" not in one(ordered, "ServiceRequest")  # an imaging order has no tube
    reported = corpus("53-")
    done = one(reported, "ImagingStudy")
    assert done["id"] == planned["id"]  # OBR-18 CT2612030052^PACS = IPC-1
    assert done["status"] == "available"
    assert {"system": "urn:dicom:uid", "value": UID} in done["identifier"]  # from ZDS-1
    assert one(reported, "DiagnosticReport")["imagingStudy"] == [
        {"reference": f"ImagingStudy/{done['id']}"}
    ]


def test_a_lab_report_has_no_imaging_study() -> None:
    assert [r for r in corpus("19-") if r["resourceType"] == "ImagingStudy"] == []
