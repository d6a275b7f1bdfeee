"""Where each DRG field's value comes from: small named readers of a ``Stay`` that the field
table (``data/frontpage_fields.json``) refers to by name. A reader answers a plain value (text,
number, date or time) or None; the table decides how it is written and which values are
allowed. Readers of repeated fields (JBDM1..15, SSJCZBM1..8) take the slot number n (1-based).
"""

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from adapters.drg import stay as fhir
from adapters.drg.stay import FeeLine, Stay
from fhir_profiles.identifiers import INSURANCE_CARD, RESIDENT_ID_CARD

Value = str | int | Decimal | date | datetime | None
StayReader = Callable[[Stay, int], Value]
LineReader = Callable[[Stay, FeeLine], Value]

SEX = {"male": "1", "female": "2"}  # GB/T 2261.1; anything else is 9 未说明


def _hospital_code(stay: Stay, n: int) -> Value:
    provider = stay.encounter.get("serviceProvider", {})
    return str(provider.get("identifier", {}).get("value", "")) or None


def _patient_name(stay: Stay, n: int) -> Value:
    names = stay.patient.get("name") or [{}]
    name = names[0]
    return str(name.get("text") or "".join([name.get("family", ""), *name.get("given", [])]))


def _sex(stay: Stay, n: int) -> Value:
    return SEX.get(str(stay.patient.get("gender", "")), "9")


def _birth_date(stay: Stay, n: int) -> Value:
    return fhir.when(stay.patient.get("birthDate"))


def _age_at_admission(stay: Stay, n: int) -> Value:
    """年龄 (周岁) on the admission day."""
    born, admitted = fhir.when(stay.patient.get("birthDate")), fhir.admitted(stay)
    if born is None or admitted is None:
        return None
    born, day = fhir.day_of(born), fhir.day_of(admitted)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _resident_id(stay: Stay, n: int) -> Value:
    return fhir.identifier(stay.patient, RESIDENT_ID_CARD) or None


def _insurance_card(stay: Stay, n: int) -> Value:
    return fhir.identifier(stay.coverage, INSURANCE_CARD) or (
        str((stay.coverage or {}).get("subscriberId", "")) or None
    )


def _hospitalization_code(key: str) -> StayReader:
    def read(stay: Stay, n: int) -> Value:
        concept = stay.encounter.get("hospitalization", {}).get(key)
        return fhir.code_of(concept) or None

    return read


def _receiving_institution(stay: Stay, n: int) -> Value:
    """拟接收医疗机构名称: the name of hospitalization.destination (PV1-37)."""
    destination = stay.encounter.get("hospitalization", {}).get("destination", {})
    return str(destination.get("display", "")) or None


def _department_code(stay: Stay, n: int) -> Value:
    """科室编码: the HIS department of the stay (PV1-10), else the ward's code. The hub keeps
    the current department only, so admission and discharge read the same one until a
    transfer history is kept (科室匹配 maps the HIS codes to the platform's)."""
    wards = [w.get("location", {}).get("identifier", {}).get("value", "") for w in fhir.wards(stay)]
    return fhir.code_of(stay.encounter.get("serviceType")) or fhir.first(wards) or None


def _department_name(stay: Stay, n: int) -> Value:
    wards = [str(w.get("location", {}).get("display", "")) for w in fhir.wards(stay)]
    return fhir.name_of(stay.encounter.get("serviceType")) or fhir.first(wards) or None


def _admitted(stay: Stay, n: int) -> Value:
    return fhir.admitted(stay)


def _discharged(stay: Stay, n: int) -> Value:
    return fhir.discharged(stay)


def _days_in_hospital(stay: Stay, n: int) -> Value:
    """实际住院天数: discharge day minus admission day, at least 1 (a same-day stay counts)."""
    admitted, discharged = fhir.admitted(stay), fhir.discharged(stay)
    if admitted is None or discharged is None:
        return None
    return max(1, (fhir.day_of(discharged) - fhir.day_of(admitted)).days)


def _diagnosis_part(stay: Stay, index: int, part: str) -> Value:
    found = fhir.diagnoses(stay)
    if index >= len(found):
        return None
    diagnosis = found[index]
    value = {
        "code": diagnosis.code,
        "name": diagnosis.name,
        "admission_condition": diagnosis.admission_condition,
    }[part]
    return value or None


def _main_diagnosis(part: str) -> StayReader:
    return lambda stay, n: _diagnosis_part(stay, 0, part)


def _other_diagnosis(part: str) -> StayReader:
    return lambda stay, n: _diagnosis_part(stay, n, part)  # slot n is the n-th after the main


def _operation(part: str) -> StayReader:
    def read(stay: Stay, n: int) -> Value:
        found = fhir.operations(stay)
        if n < 1 or n > len(found):
            return None
        operation = found[n - 1]
        return {"code": operation.code, "name": operation.name, "date": operation.performed}[
            part
        ] or None

    return read


def _total_cost(stay: Stay, n: int) -> Value:
    return fhir.total_cost(stay)


def _serial(stay: Stay, n: int) -> Value:
    return fhir.insurance_serial_number(stay) or None


def _visit(stay: Stay, n: int) -> Value:
    return fhir.visit_number(stay) or None


def _record_number(stay: Stay, n: int) -> Value:
    return fhir.medical_record_number(stay) or None


def _count(stay: Stay, n: int) -> Value:
    return fhir.admission_count(stay)


STAY_READERS: dict[str, StayReader] = {
    "hospital_code": _hospital_code,
    "insurance_serial_number": _serial,
    "visit_number": _visit,
    "medical_record_number": _record_number,
    "admission_count": _count,
    "patient_name": _patient_name,
    "sex_code": _sex,
    "birth_date": _birth_date,
    "age_at_admission": _age_at_admission,
    "resident_id_number": _resident_id,
    "insurance_card_number": _insurance_card,
    "admission_route": _hospitalization_code("admitSource"),
    "discharge_way": _hospitalization_code("dischargeDisposition"),
    "receiving_institution": _receiving_institution,
    "admitted_at": _admitted,
    "discharged_at": _discharged,
    "department_code": _department_code,
    "department_name": _department_name,
    "days_in_hospital": _days_in_hospital,
    "main_diagnosis_code": _main_diagnosis("code"),
    "main_diagnosis_name": _main_diagnosis("name"),
    "other_diagnosis_code": _other_diagnosis("code"),
    "other_diagnosis_name": _other_diagnosis("name"),
    "other_diagnosis_admission_condition": _other_diagnosis("admission_condition"),
    "operation_code": _operation("code"),
    "operation_name": _operation("name"),
    "operation_date": _operation("date"),
    "total_cost": _total_cost,
}

LINE_READERS: dict[str, LineReader] = {
    "fee_code": lambda stay, line: line.code or None,
    "fee_name": lambda stay, line: line.name or None,
    "unit_price": lambda stay, line: line.unit_price,
    "quantity": lambda stay, line: line.quantity,
    "amount": lambda stay, line: line.amount,
    "occurred_at": lambda stay, line: line.occurred,
    "discharged_at": lambda stay, line: fhir.discharged(stay),
}
