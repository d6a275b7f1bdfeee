"""The surveillance report set built from the cases of a period, as records with the hub's own
field names (the platform's columns come from its layout, ``layout.py``):

- ``case``: 门急诊和在院病例, one per case visit (outpatient, emergency, in hospital);
- ``discharge``: 出院病例, a case stay that ended in the period;
- ``summary``: 出院小结, the discharge summaries (DocumentReference 18842-5) of those stays;
- ``death``: 死亡记录, a case visit that ended in death (离院方式 5, or the patient's death
  within it);
- ``medication``: 用药记录, every prescription and every administration of a case visit, one
  record each;
- ``lab``: 检验记录, every laboratory result of a case visit, one record per test.

Coded values use the national value domains: sex GB/T 2261.1, ID type CV02.01.101, visit type
(1 门诊 2 急诊 3 住院 4 留观), 离院方式 CV06.00.226, grounds (1 诊断 2 主诉 3 病原学 4 用药)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.surveillance.cases import Case, age_on, degrees_celsius, positive
from fhir_profiles.identifiers import RESIDENT_ID_CARD
from hub.base.hospital_time import HOSPITAL, moment_of

Json = dict[str, Any]
SEX = {"male": "1", "female": "2", "unknown": "0", "other": "9"}
VISIT_TYPE = {"AMB": "1", "EMER": "2", "IMP": "3", "ACUTE": "3", "NONAC": "3", "OBSENC": "4"}
GROUND_CODES = {"diagnosis": "1", "complaint": "2", "pathogen": "3", "drug": "4", "fever": "5"}
DISCHARGE_SUMMARY = "18842-5"
DIED = "5"  # 离院方式 死亡


@dataclass(frozen=True)
class CaseData:
    """A case with what its records need: the patient and everything that names the visit."""

    case: Case
    patient: Json
    linked: Sequence[Json]  # Observations, medications, documents of the visit


def local_time(text: str | None) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in hospital time, as the platforms write times."""
    moment = moment_of(text)
    if moment is None:
        return ""
    return moment.astimezone(HOSPITAL).strftime("%Y-%m-%d %H:%M:%S")


def case_record(data: CaseData) -> Json:
    encounter, grounds = data.case.encounter, data.case.grounds
    diagnosis = _diagnosis(data.case)
    record = {
        **_person(data.patient, encounter),
        "record_id": encounter["id"],
        "visit_type": VISIT_TYPE.get((encounter.get("class") or {}).get("code", ""), ""),
        "visit_time": local_time((encounter.get("period") or {}).get("start")),
        **_department(encounter),
        "complaint": "; ".join(_texts(encounter.get("reasonCode", [])))[:200],
        "diagnosis_code": diagnosis[0],
        "diagnosis_name": diagnosis[1],
        "grounds": ",".join(GROUND_CODES[g] for g in grounds),
        "temperature": _hottest(data.linked),
    }
    return record


def discharge_record(data: CaseData) -> Json:
    encounter = data.case.encounter
    period = encounter.get("period") or {}
    began, ended = moment_of(period.get("start")), moment_of(period.get("end"))
    diagnosis = _diagnosis(data.case)
    return {
        **_person(data.patient, encounter),
        "record_id": encounter["id"],
        "admit_time": local_time(period.get("start")),
        "discharge_time": local_time(period.get("end")),
        "stay_days": _stay_days(began, ended),
        "discharge_way": _discharge_way(encounter),
        **_department(encounter),
        "diagnosis_code": diagnosis[0],
        "diagnosis_name": diagnosis[1],
    }


def summary_records(data: CaseData) -> list[Json]:
    found = []
    for document in data.linked:
        if document.get("resourceType") != "DocumentReference":
            continue
        codes = [c.get("code") for c in (document.get("type") or {}).get("coding", [])]
        if DISCHARGE_SUMMARY not in codes or document.get("status") == "entered-in-error":
            continue
        attachment = ((document.get("content") or [{}])[0]).get("attachment") or {}
        found.append(
            {
                **_person(data.patient, data.case.encounter),
                "record_id": document["id"],
                "visit_id": data.case.id,
                "title": attachment.get("title") or "出院小结",
                "written": local_time(document.get("date")),
                "document_url": attachment.get("url", ""),
                "document_hash": attachment.get("hash", ""),
            }
        )
    return found


def death_record(data: CaseData) -> Json | None:
    """The visit ended in death: 离院方式 5, or the patient died during it (a death recorded
    on the patient after the visit is another visit's, or none of the hospital's)."""
    encounter = data.case.encounter
    period = encounter.get("period") or {}
    deceased = data.patient.get("deceasedDateTime")
    if _discharge_way(encounter) != DIED and not _during(deceased, period):
        return None
    died = deceased if _during(deceased, period) else period.get("end")
    diagnosis = _diagnosis(data.case)
    return {
        **_person(data.patient, encounter),
        "record_id": encounter["id"],
        "death_time": local_time(died),
        "cause_code": diagnosis[0],
        "cause_name": diagnosis[1],
    }


def medication_records(data: CaseData) -> list[Json]:
    found = []
    for item in data.linked:
        kind = item.get("resourceType")
        if kind not in ("MedicationRequest", "MedicationAdministration"):
            continue
        if item.get("status") == "entered-in-error":
            continue
        concept = item.get("medicationCodeableConcept") or {}
        coding = (concept.get("coding") or [{}])[0]
        dose, route = _dose(item)
        when = item.get("authoredOn") if kind == "MedicationRequest" else _given_at(item)
        found.append(
            {
                **_person(data.patient, data.case.encounter),
                "record_id": item["id"],
                "visit_id": data.case.id,
                "record_kind": "1" if kind == "MedicationRequest" else "2",  # 医嘱 / 执行
                "drug_code": coding.get("code", ""),
                "drug_name": concept.get("text") or coding.get("display", ""),
                "dose": dose.get("value", ""),
                "dose_unit": dose.get("unit", ""),
                "route": route,
                "medication_time": local_time(when),
            }
        )
    return found


def lab_records(data: CaseData) -> list[Json]:
    found = []
    for item in data.linked:
        if item.get("resourceType") != "Observation" or not _laboratory(item):
            continue
        if item.get("status") in ("entered-in-error", "cancelled", "registered"):
            continue
        coding = ((item.get("code") or {}).get("coding") or [{}])[0]
        quantity = item.get("valueQuantity") or {}
        flags = [
            c.get("code", "") for i in item.get("interpretation", []) for c in i.get("coding", [])
        ]
        found.append(
            {
                **_person(data.patient, data.case.encounter),
                "record_id": item["id"],
                "visit_id": data.case.id,
                "test_code": coding.get("code", ""),
                "test_name": (item.get("code") or {}).get("text") or coding.get("display", ""),
                "result": _result(item),
                "unit": quantity.get("unit") or quantity.get("code", ""),
                "abnormal_flag": flags[0] if flags else "",
                "positive": "1" if positive(item) else "0",
                "taken_time": local_time(item.get("effectiveDateTime")),
                "reported_time": local_time(item.get("issued")),
            }
        )
    return found


def _during(moment: str | None, period: Json) -> bool:
    """Within the visit, or on the day it ended (a death is often recorded at the end)."""
    died, began = moment_of(moment), moment_of(period.get("start"))
    if died is None or began is None or died < began:
        return False
    ended = moment_of(period.get("end"))
    if ended is None:
        return True
    return died.astimezone(HOSPITAL).date() <= ended.astimezone(HOSPITAL).date()


def _stay_days(began: datetime | None, ended: datetime | None) -> int:
    """住院天数: hospital days between admission and discharge, at least one."""
    if began is None or ended is None:
        return 0
    first, last = began.astimezone(HOSPITAL).date(), ended.astimezone(HOSPITAL).date()
    return max(1, (last - first).days)


def _person(patient: Json, encounter: Json) -> Json:
    resident = next(
        (i for i in patient.get("identifier", []) if i.get("system") == RESIDENT_ID_CARD), None
    )
    began = moment_of((encounter.get("period") or {}).get("start"))
    day = began.astimezone(HOSPITAL).date() if began else datetime.now(HOSPITAL).date()
    names = patient.get("name") or [{}]
    visit_numbers = [i.get("value") for i in encounter.get("identifier", []) if i.get("value")]
    return {
        "visit_number": visit_numbers[0] if visit_numbers else encounter["id"],
        "patient_id": patient.get("id", ""),
        "name": names[0].get("text")
        or "".join([names[0].get("family", ""), *names[0].get("given", [])]),
        "sex": SEX.get(patient.get("gender", ""), "9"),
        "birth_date": (patient.get("birthDate") or "")[:10],
        "age": age_on(patient.get("birthDate"), day) if patient.get("birthDate") else "",
        "id_type": "01" if resident else "",
        "id_number": resident.get("value", "") if resident else "",
    }


def _department(encounter: Json) -> Json:
    for entry in encounter.get("location", []):
        where = entry.get("location") or {}
        return {
            "department_code": (where.get("identifier") or {}).get("value", ""),
            "department_name": where.get("display", ""),
        }
    return {"department_code": "", "department_name": ""}


def _diagnosis(case: Case) -> tuple[str, str]:
    for condition in case.diagnoses:
        concept = condition.get("code") or {}
        coding = (concept.get("coding") or [{}])[0]
        return coding.get("code", ""), concept.get("text") or coding.get("display", "")
    return "", ""


def _discharge_way(encounter: Json) -> str:
    disposition = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    return str(((disposition.get("coding") or [{}])[0]).get("code", ""))


def _hottest(linked: Sequence[Json]) -> float | str:
    temperatures = [
        celsius
        for o in linked
        if o.get("resourceType") == "Observation"
        and any(c.get("code") == "8310-5" for c in (o.get("code") or {}).get("coding", []))
        and (celsius := degrees_celsius(o)) is not None
    ]
    return round(max(temperatures), 1) if temperatures else ""


def _laboratory(observation: Json) -> bool:
    categories = {
        c.get("code") for k in observation.get("category", []) for c in k.get("coding", [])
    }
    return "vital-signs" not in categories and "survey" not in categories


def _result(observation: Json) -> str:
    if "valueQuantity" in observation:
        return str(observation["valueQuantity"].get("value", ""))
    concept = observation.get("valueCodeableConcept")
    if concept:
        return str(concept.get("text") or (concept.get("coding") or [{}])[0].get("display", ""))
    return str(observation.get("valueString", ""))


def _dose(item: Json) -> tuple[Json, str]:
    if item.get("resourceType") == "MedicationAdministration":
        dosage = item.get("dosage") or {}
        route = (dosage.get("route") or {}).get("text", "")
        return dosage.get("dose") or {}, route
    instruction = (item.get("dosageInstruction") or [{}])[0]
    dose = ((instruction.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
    return dose, (instruction.get("route") or {}).get("text", "")


def _given_at(item: Json) -> str | None:
    return item.get("effectiveDateTime") or (item.get("effectivePeriod") or {}).get("start")


def _texts(concepts: Sequence[Json]) -> list[str]:
    return [c.get("text") or (c.get("coding") or [{}])[0].get("display", "") for c in concepts]
