"""One inpatient stay (一次住院) as the hub keeps it in FHIR R4, and what the DRG documents read
from it: identifiers, local times, the diagnoses in front-page order, the operations and the
fee lines.

The resources are those the HL7 v2 mappings produce (``hub/hl7v2/mapping/``): the Encounter's
hospitalization carries 入院途径 and 离院方式 as sent, Encounter.diagnosis the use (AD/DD) and
rank of each Condition, and every ChargeItem its signed amount, unit price and quantity."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fhir_profiles.identifiers import INPATIENT_NUMBER, MEDICAL_RECORD_NUMBER
from hub.base import correlation
from hub.base.json import Json

LOCAL = ZoneInfo("Asia/Shanghai")  # the platform reads every time as Shaoxing wall-clock time

EXTENSION = "urn:jianhu:structuredefinition"
UNIT_PRICE = f"{EXTENSION}:charge-unit-price"  # 单价, written by the DFT mapping
# 住院次数: the HIS's count of this patient's admissions, when a feed carries it
ADMISSION_COUNT = f"{EXTENSION}:admission-count"
ADMISSION_COUNT_SYSTEM = "urn:jianhu:sid:admission-count"
# 医保流水号 (the insurer's number for this stay, 就诊ID): on the Encounter or the Claim
INSURANCE_SERIAL = "urn:jianhu:sid:insurance-serial-number"
# 入院病情 of one diagnosis (1 有, 2 临床未确定, 3 情况不明, 4 无): on the diagnosis or Condition
ADMISSION_CONDITION = f"{EXTENSION}:admission-condition"
VISIT_SYSTEM_PREFIX = "urn:jianhu:sid:visit:"
DISCHARGE_ROLE = "DD"  # diagnosis-role: discharge diagnosis (出院诊断)
# statuses whose resources are no part of the stay's record
VOID = {"entered-in-error", "not-done", "aborted", "not-billable", "planned", "refuted"}


@dataclass(frozen=True)
class Stay:
    """What one front page, settlement list and fee-detail document are built from."""

    patient: Json
    encounter: Json
    conditions: list[Json] = field(default_factory=list)
    procedures: list[Json] = field(default_factory=list)
    charge_items: list[Json] = field(default_factory=list)
    coverage: Json | None = None
    claim: Json | None = None

    def correlations(self) -> tuple[str, ...]:
        """The messages and requests that wrote what the stay's documents are built from."""
        parts = [self.patient, self.encounter, *self.conditions, *self.procedures]
        parts += [*self.charge_items, *(r for r in (self.coverage, self.claim) if r)]
        found = (correlation.of_resource(resource) for resource in parts)
        return tuple(dict.fromkeys(c for c in found if c))


@dataclass(frozen=True)
class Diagnosis:
    code: str
    name: str
    admission_condition: str  # 入院病情, "" when not recorded


@dataclass(frozen=True)
class Operation:
    code: str
    name: str
    performed: datetime | date | None


@dataclass(frozen=True)
class FeeLine:
    """One 明细 row after refunds are netted against their charge (see ``fee_lines``)."""

    code: str
    name: str
    unit_price: Decimal | None
    quantity: Decimal
    amount: Decimal
    occurred: datetime | date | None


# --- reading FHIR values ---


def when(value: object) -> datetime | date | None:
    """A FHIR date or dateTime: a datetime in local time, a bare date as a date, else None
    (a year or a month alone cannot be a front-page date)."""
    if not isinstance(value, str):
        return None
    if "T" not in value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(LOCAL) if moment.tzinfo else moment.replace(tzinfo=LOCAL)


def day_of(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    return Decimal(str(value))


def identifier(resource: Json | None, *systems: str) -> str:
    """The first identifier value of the first system that has one."""
    if resource is None:
        return ""
    found = resource.get("identifier") or []
    found = found if isinstance(found, list) else [found]
    for system in systems:
        for entry in found:
            if entry.get("system") == system and entry.get("value"):
                return str(entry["value"])
    return ""


def extension(resource: Json | None, url: str) -> Any:
    for entry in (resource or {}).get("extension", []):
        if entry.get("url") == url:
            return next((v for k, v in entry.items() if k.startswith("value")), None)
    return None


def first_coding(concept: Json | None) -> Json:
    codings = (concept or {}).get("coding") or [{}]
    return dict(codings[0])


def code_of(concept: Json | None) -> str:
    return str(first_coding(concept).get("code", ""))


def name_of(concept: Json | None) -> str:
    coding = first_coding(concept)
    return str((concept or {}).get("text") or coding.get("display") or coding.get("code", ""))


def _is_void(resource: Json) -> bool:
    status = resource.get("status") or code_of(resource.get("verificationStatus"))
    return status in VOID


# --- the stay's identity and times ---


def medical_record_number(stay: Stay) -> str:
    """病案号: the medical-record number, else the inpatient number (住院号)."""
    return identifier(stay.patient, MEDICAL_RECORD_NUMBER, INPATIENT_NUMBER) or identifier(
        stay.encounter, MEDICAL_RECORD_NUMBER, INPATIENT_NUMBER
    )


def visit_number(stay: Stay) -> str:
    """就诊流水号: the HIS visit number (PV1-19), whatever facility issued it."""
    for entry in stay.encounter.get("identifier", []):
        if str(entry.get("system", "")).startswith(VISIT_SYSTEM_PREFIX) and entry.get("value"):
            return str(entry["value"])
    return ""


def admission_count(stay: Stay) -> int:
    """住院次数 from the Encounter when a feed carries it; the HL7 feeds do not, so a stay
    without it counts as the first (1)."""
    count = extension(stay.encounter, ADMISSION_COUNT) or identifier(
        stay.encounter, ADMISSION_COUNT_SYSTEM
    )
    return int(count) if str(count).isdigit() and int(count) > 0 else 1


def insurance_serial_number(stay: Stay) -> str:
    """医保流水号 from the Encounter or the Claim, else the visit number (a self-paying stay
    has none, and the platform still keys the record by it)."""
    return (
        identifier(stay.encounter, INSURANCE_SERIAL)
        or identifier(stay.claim, INSURANCE_SERIAL)
        or visit_number(stay)
    )


def admitted(stay: Stay) -> datetime | date | None:
    return when(stay.encounter.get("period", {}).get("start"))


def discharged(stay: Stay) -> datetime | date | None:
    return when(stay.encounter.get("period", {}).get("end"))


# --- diagnoses (诊断) ---


def _conditions_by_reference(stay: Stay) -> dict[str, Json]:
    return {f"Condition/{c.get('id')}": c for c in stay.conditions}


def _roles(entry: Json) -> set[str]:
    return {str(c.get("code")) for c in entry.get("use", {}).get("coding", [])}


def _rank(entry: Json) -> int:
    rank = entry.get("rank")
    return rank if isinstance(rank, int) and rank > 0 else 1_000_000


def _ordered_entries(stay: Stay) -> list[Json]:
    """Encounter.diagnosis in front-page order: discharge diagnoses (DD) when the stay has
    any, since admission ones (AD) are superseded by them; then by rank, unranked last."""
    entries = list(stay.encounter.get("diagnosis", []))
    discharge = [e for e in entries if DISCHARGE_ROLE in _roles(e)]
    chosen = discharge or entries
    return sorted(chosen, key=_rank)  # sorted is stable: unranked keep the sender's order


def _diagnosis(condition: Json, entry: Json | None) -> Diagnosis:
    state = extension(entry, ADMISSION_CONDITION) or extension(condition, ADMISSION_CONDITION)
    state_code = code_of(state) if isinstance(state, dict) else str(state or "")
    concept = condition.get("code")
    return Diagnosis(code_of(concept), name_of(concept), state_code)


def diagnoses(stay: Stay) -> list[Diagnosis]:
    """The main diagnosis first (DD with rank 1, else rank 1, else the first discharge
    diagnosis, else the first listed, else the first Condition), then the others, each code
    once. Conditions entered in error are left out."""
    by_reference = _conditions_by_reference(stay)
    pairs: list[tuple[Json, Json | None]] = []
    for entry in _ordered_entries(stay):
        listed = by_reference.get(str(entry.get("condition", {}).get("reference")))
        if listed is not None:
            pairs.append((listed, entry))
    if not pairs:
        pairs = [(unlisted, None) for unlisted in stay.conditions]
    found: list[Diagnosis] = []
    for condition, listing in pairs:
        diagnosis = _diagnosis(condition, listing)
        if _is_void(condition) or not (diagnosis.code or diagnosis.name):
            continue
        if all(diagnosis.code != other.code for other in found):
            found.append(diagnosis)
    return found


# --- operations (手术及操作) ---


def _icd9_coding(concept: Json | None) -> Json:
    """The ICD-9-CM-3 coding when a procedure carries several code systems."""
    codings = (concept or {}).get("coding", [])
    for coding in codings:
        if "icd-9" in str(coding.get("system", "")).lower():
            return dict(coding)
    return first_coding(concept)


def operations(stay: Stay) -> list[Operation]:
    """Procedures done in this stay, in the order they were performed."""
    found = []
    for procedure in stay.procedures:
        if _is_void(procedure):
            continue
        coding = _icd9_coding(procedure.get("code"))
        performed = when(procedure.get("performedDateTime")) or when(
            procedure.get("performedPeriod", {}).get("start")
        )
        name = str(coding.get("display") or procedure.get("code", {}).get("text", ""))
        found.append(Operation(str(coding.get("code", "")), name, performed))
    return sorted(found, key=lambda op: _sort_key(op.performed))


def _sort_key(moment: datetime | date | None) -> str:
    if moment is None:
        return "9999"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# --- fee lines (费用明细) ---


def _line(item: Json) -> FeeLine:
    concept = item.get("code")
    amount = decimal(item.get("priceOverride", {}).get("value")) or Decimal(0)
    quantity = decimal(item.get("quantity", {}).get("value"))
    unit = extension(item, UNIT_PRICE)
    unit_price = decimal(unit.get("value")) if isinstance(unit, dict) else None
    if unit_price is None and quantity:
        unit_price = abs(amount / quantity)
    occurred = when(item.get("occurrenceDateTime")) or when(
        item.get("occurrencePeriod", {}).get("start")
    )
    return FeeLine(
        code_of(concept),
        name_of(concept),
        unit_price,
        Decimal(1) if quantity is None else quantity,
        amount,
        occurred,
    )


def charged(stay: Stay) -> list[FeeLine]:
    """Every billable charge line as the HIS posted it, refunds negative."""
    return [_line(item) for item in stay.charge_items if not _is_void(item)]


def total_cost(stay: Stay) -> Decimal:
    """总费用: the sum of the lines with their signs, so a refund lowers it."""
    return sum((line.amount for line in charged(stay)), Decimal(0))


def fee_lines(stay: Stay) -> list[FeeLine]:
    """The 明细 rows: the platform takes no negative amount, so each refund line is netted
    against the latest charges of the same item and unit price; a charge refunded in
    full leaves no row. A refund with nothing to net against stays negative, and the checks
    name it rather than send a detail list that does not add up to 总费用."""
    rows = charged(stay)
    result: list[FeeLine] = []
    for line in rows:
        if line.amount >= 0:
            result.append(line)
    for refund in (line for line in rows if line.amount < 0):
        result = _net(result, refund)
    return [line for line in result if line.amount != 0 or line.quantity != 0]


def _net(lines: list[FeeLine], refund: FeeLine) -> list[FeeLine]:
    amount, quantity = refund.amount, refund.quantity
    netted = list(lines)
    for index in reversed(range(len(netted))):
        line = netted[index]
        same = (line.code, line.unit_price) == (refund.code, refund.unit_price)
        if amount >= 0 or not same or line.amount <= 0:
            continue
        taken = min(line.amount, -amount)
        share = min(line.quantity, -quantity) if quantity < 0 else Decimal(0)
        netted[index] = _replace(line, line.amount - taken, line.quantity - share)
        amount += taken
        quantity += share
    if amount < 0:
        netted.append(_replace(refund, amount, quantity))
    return netted


def _replace(line: FeeLine, amount: Decimal, quantity: Decimal) -> FeeLine:
    return FeeLine(line.code, line.name, line.unit_price, quantity, amount, line.occurred)


def wards(stay: Stay) -> Iterator[Json]:
    for entry in stay.encounter.get("location", []):
        codes = {c.get("code") for c in entry.get("physicalType", {}).get("coding", [])}
        if "wa" in codes:
            yield entry


def first(values: Iterable[str]) -> str:
    return next((value for value in values if value), "")
