"""Imaging: the ImagingStudy a PACS result (ORU^R01 of an imaging section, OBR-24) or an imaging
order (OMI^O23, its IPC) speaks of, with its accession number, its study instance UID when the
message gives one (IPC-3, ZDS-1 as IHE's radiology profiles send it, or an OBX coded DICOM
113014), its modality and its order; the DiagnosticReport links it (``imagingStudy``).

The accession number is the key: OBR-18 when the PACS sends it there (IHE), else the filler
order number OBR-3 (检查号, what Chinese PACS send), or IPC-1 on an order; so the order, the
study and the report meet on one ImagingStudy."""

from hub.base.json import Json
from hub.hl7v2.datatypes import codeable, date_time
from hub.hl7v2.mapping.common import Mapped, entity_key, label, reference, stable_id, staff
from hub.hl7v2.message import Segment

DICOM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# OBR-24 diagnostic service sections (table 0074, and what Chinese PACS send) -> DICOM modality
MODALITIES = {
    "CT": "CT", "MR": "MR", "NMR": "MR", "CR": "CR", "DR": "DX", "DX": "DX", "RX": "DX",
    "XRC": "CR", "US": "US", "CUS": "US", "OUS": "US", "NM": "NM", "NMS": "NM", "XA": "XA",
    "MG": "MG", "PT": "PT", "RF": "RF", "RAD": "",
}  # fmt: skip
STUDY_UID_CODES = frozenset({"113014", "StudyInstanceUID", "STUDYUID"})


def is_imaging(obr: Segment) -> bool:
    return obr.value(24) in MODALITIES


def study_from_result(
    obr: Segment, report: Json, subject: Json, sender: str, mapped: Mapped
) -> Json | None:
    """The ImagingStudy of an imaging OBR, keyed by its accession number."""
    accession = entity_key(obr.components(18), sender) or entity_key(obr.components(3), sender)
    if not is_imaging(obr) or accession is None:
        return None
    study = _study(accession, subject, obr.value(24), "available")
    if started := date_time(obr.value(7)):
        study["started"] = started
    if "basedOn" in report:
        study["basedOn"] = report["basedOn"]
    if "encounter" in report:
        study["encounter"] = report["encounter"]
    # OBR-32 principal result interpreter: an NDL, the person in subcomponents (2011&冯&国栋)
    interpreter = [obr.value(32, 1, part) for part in (1, 2, 3)]
    if reader := staff(interpreter, mapped):
        reader.pop("type", None)
        study["interpreter"] = [reader]
    if procedure := codeable(obr.components(4), sender):
        study["procedureCode"] = [procedure]
        study["description"] = procedure.get("text") or obr.value(4, 2)
    found = mapped.add(study)
    report["imagingStudy"] = [reference(found)]
    return found


def study_from_order(
    ipc: Segment, request: Json, subject: Json, sender: str, mapped: Mapped
) -> Json | None:
    """OMI^O23: the study the PACS is to make (IPC-1 accession, IPC-3 study UID), registered."""
    accession = entity_key(ipc.components(1), sender)
    if accession is None:
        return None
    study = _study(accession, subject, ipc.value(5), "registered")
    study["basedOn"] = [reference(request)]
    take_uid(study, ipc.value(3))
    return mapped.context(study)


def take_uid(study: Json | None, uid: str) -> None:
    """A study instance UID (dotted digits), from IPC-3, ZDS-1 or an OBX coded 113014."""
    uid = uid.split("^")[0].strip()
    if study is None or not uid or not all(part.isdigit() for part in uid.split(".")):
        return
    entry = {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}
    if entry not in study["identifier"]:
        study["identifier"].append(entry)


def _study(accession: tuple[str, str], subject: Json, section: str, status: str) -> Json:
    namespace, number = accession
    study: Json = {
        "resourceType": "ImagingStudy",
        "id": stable_id("img", namespace, number),
        "identifier": [
            {
                "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                "system": f"urn:jianhu:sid:accession:{label(namespace)}",
                "value": number,
            }
        ],
        "status": status,
        "subject": reference(subject),
    }
    if modality := MODALITIES.get(section):
        study["modality"] = [{"system": DICOM, "code": modality}]
    return study
