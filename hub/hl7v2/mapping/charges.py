"""DFT^P03 posted charges (费用明细): the Patient, the Encounter from PV1 and one ChargeItem per
FT1. These ChargeItems feed the fee-detail uploads (NHSA 2204/2301, DRG 住院诊疗费用明细) and the
settlement list, so every FT1 value those need is kept: standard elements where R4 has one,
an extension of the hub's own otherwise.

- FT1-2 transaction ID (else FT1-3 batch ID with FT1-1) is the key, with the sender and the
  visit number (PV1-19): a resent day's charges update the same ChargeItems.
- FT1-11 extended amount (金额) is ``priceOverride``, the R4 "total price" of the line;
  FT1-12 unit amount (单价) has no R4 element and goes to an extension. Amounts and quantities
  are kept with the sign the HIS sends: a refund (FT1-6 CR) is a line of its own with a
  negative quantity and amount, as the NHSA fee-detail upload expects, so the lines of a visit
  add up to what the patient owes.
- FT1-6 gives the status through table ``charge_status``; a sender that voids a posting by
  resending its transaction ID maps that code to ``entered-in-error``.
"""

from hub.base.errors import MappingError
from hub.base.json import Json
from hub.hl7v2.datatypes import codeable, date_time, table
from hub.hl7v2.mapping.common import (
    Mapped,
    coded,
    field_system,
    patient,
    reference,
    sender_of,
    stable_id,
    staff,
)
from hub.hl7v2.mapping.visits import encounter
from hub.hl7v2.message import Message, Segment

EXTENSION = "urn:jianhu:structuredefinition"
UNIT_PRICE = f"{EXTENSION}:charge-unit-price"  # FT1-12 单价
TRANSACTION_TYPE = f"{EXTENSION}:charge-transaction-type"  # FT1-6 as sent (CG, CR, ...)
INSURANCE_TYPE = f"{EXTENSION}:insurance-type"  # 医保类别 (CV02.01.204) of the charged visit
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PROVIDER_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0443"
# FT1-20 performed by (执行医生), FT1-21 ordered by (开单医生).
PERFORMER_FIELDS = (
    (20, PARTICIPATION_TYPE, "PRF", "performer"),
    (21, PROVIDER_ROLE, "OP", "Ordering Provider"),
)


def charges(message: Message, mapped: Mapped) -> None:
    sender = sender_of(message)
    subject = patient(message, mapped)
    visit = encounter(message, mapped, subject)
    pv1 = message.first("PV1")
    visit_number = pv1.value(19) if pv1 is not None else ""
    lines = message["FT1"]
    if not lines:
        raise MappingError("the DFT message has no FT1 segment")
    insurance = _visit_insurance_type(message, sender)
    for ft1 in lines:
        mapped.add(_charge_item(ft1, subject, visit, visit_number, insurance, sender))


def _charge_item(
    ft1: Segment,
    subject: Json,
    visit: Json | None,
    visit_number: str,
    insurance: Json | None,
    sender: str,
) -> Json:
    transaction = _transaction_id(ft1)
    item: Json = {
        "resourceType": "ChargeItem",
        "id": stable_id("chg", sender, visit_number, transaction),
        "identifier": [
            {"system": f"urn:jianhu:sid:charge-transaction:{sender.lower()}", "value": transaction}
        ],
        "status": table("charge_status", sender).get(ft1.value(6), "unknown"),
        "code": _code(ft1, sender, transaction),
        "subject": reference(subject),
    }
    if visit is not None:
        item["context"] = reference(visit)
    item.update(_occurrence(ft1))
    item.update(_amounts(ft1, transaction))
    item.update(_participants(ft1, sender))
    reasons = [
        concept
        for rep in range(1, len(ft1.repetitions(19)) + 1)
        if (concept := codeable(ft1.components(19, rep), sender))
    ]
    if reasons:
        item["reason"] = reasons
    if extensions := _extensions(ft1, transaction, insurance, sender):
        item["extension"] = extensions
    return item


def _amounts(ft1: Segment, transaction: str) -> Json:
    found: Json = {}
    quantity = _number(ft1.value(10), "FT1-10 transaction quantity", transaction)
    if quantity is not None:
        found["quantity"] = {"value": quantity}
    if total := _money(ft1, 11, "FT1-11 extended amount", transaction):
        found["priceOverride"] = total
    return found


def _participants(ft1: Segment, sender: str) -> Json:
    found: Json = {}
    if performers := _performers(ft1, sender):
        found["performer"] = performers
    if department := _department(ft1.components(13), sender):
        # FT1-13 is the department that owns the charge: in this HIS the ordering (开单) one.
        found["requestingOrganization"] = department
    if enterer := staff(ft1.components(24)):
        found["enterer"] = enterer
    if entered := date_time(ft1.value(5)):
        found["enteredDate"] = entered
    return found


def _extensions(ft1: Segment, transaction: str, insurance: Json | None, sender: str) -> list[Json]:
    found: list[Json] = []
    if kind := ft1.value(6):
        found.append({"url": TRANSACTION_TYPE, "valueCode": kind})
    if unit := _money(ft1, 12, "FT1-12 unit amount", transaction):
        found.append({"url": UNIT_PRICE, "valueMoney": unit})
    # This HIS sends the line's 医保类别 in FT1-18 (patient type in the standard) with an empty
    # CWE.3; table field_coding_system names its code system. ZPI-3 stands in for a line without.
    line_insurance = coded(ft1.components(18), sender, field_system("FT1-18", sender))
    if insurance_type := line_insurance or insurance:
        found.append({"url": INSURANCE_TYPE, "valueCodeableConcept": insurance_type})
    return found


def _transaction_id(ft1: Segment) -> str:
    if transaction := ft1.value(2):
        return transaction
    if batch := ft1.value(3):  # the batch numbers its lines by set ID
        return f"{batch}-{ft1.value(1)}"
    raise MappingError(f"FT1 {ft1.value(1)!r} has neither a transaction ID nor a batch ID")


def _code(ft1: Segment, sender: str, transaction: str) -> Json:
    """FT1-7: the HIS fee code (院内收费项目编码), and in the alternate triple a standard code
    such as the 医保目录编码 when the HIS sends one; FT1-8 names it otherwise."""
    concept = codeable(ft1.components(7), sender)
    if concept is None and ft1.value(8):
        concept = {"text": ft1.value(8)}
    if concept is None:
        raise MappingError(f"FT1 {transaction}: FT1-7 transaction code is missing")
    return concept


def _occurrence(ft1: Segment) -> Json:
    """FT1-4 is a date range (DR); a single date is the usual case."""
    start, end = date_time(ft1.value(4, 1)), date_time(ft1.value(4, 2))
    if start and end:
        return {"occurrencePeriod": {"start": start, "end": end}}
    if start:
        return {"occurrenceDateTime": start}
    return {}


def _number(text: str, what: str, transaction: str) -> int | float | None:
    """A wrong amount would be uploaded to the insurer, so an unreadable one fails the message."""
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError as exc:
        raise MappingError(f"FT1 {transaction}: {what} {text!r} is not a number") from exc
    return int(number) if number.is_integer() and "." not in text else number


def _money(ft1: Segment, field_number: int, what: str, transaction: str) -> Json | None:
    """CP: CP.1 is MO, amount & currency as subcomponents (``45.00&CNY``)."""
    value = _number(ft1.value(field_number, 1, 1), what, transaction)
    if value is None:
        return None
    money: Json = {"value": value}
    if currency := ft1.value(field_number, 1, 2):
        money["currency"] = currency.upper()
    return money


def _performers(ft1: Segment, sender: str) -> list[Json]:
    found = []
    for number, system, code, display in PERFORMER_FIELDS:
        for rep in range(1, len(ft1.repetitions(number)) + 1):
            if actor := staff(ft1.components(number, rep)):
                function = {"coding": [{"system": system, "code": code, "display": display}]}
                found.append({"function": function, "actor": actor})
    return found


def _department(components: list[str], sender: str) -> Json | None:
    """CWE department (code ^ name) -> a display reference with the department code (科室编码)."""
    code = components[0] if components else ""
    name = components[1] if len(components) > 1 else ""
    if not code and not name:
        return None
    found: Json = {"display": name or code}
    if code:
        found["identifier"] = {
            "system": f"urn:jianhu:sid:department:{sender.lower()}",
            "value": code,
        }
    return found


def _visit_insurance_type(message: Message, sender: str) -> Json | None:
    """ZPI-3: the HIS's 医保类别 of the patient (CV02.01.204)."""
    zpi = message.first("ZPI")
    return codeable(zpi.components(3), sender) if zpi is not None else None
