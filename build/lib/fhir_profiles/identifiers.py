"""Identifier systems of the Chinese profile, and the resident ID-card number check.

Every system that issues a patient or visit number gets one stable URI, so a number from the
HIS, the LIS and an insurance file lands on the same identifier. National numbers and the
hospital's own numbers alike live under one URN namespace; a source that sends an OID or a
local label is mapped onto these by the normalizers.
"""

from datetime import date

RESIDENT_ID_CARD = "urn:jianhu:sid:resident-id-card"  # 居民身份证号码 (GB 11643)
INSURANCE_CARD = "urn:jianhu:sid:insurance-card"  # 医保卡号
VISIT_CARD = "urn:jianhu:sid:visit-card"  # 就诊卡号
OUTPATIENT_NUMBER = "urn:jianhu:sid:outpatient-number"  # 门诊号
INPATIENT_NUMBER = "urn:jianhu:sid:inpatient-number"  # 住院号
MEDICAL_RECORD_NUMBER = "urn:jianhu:sid:medical-record-number"  # 病案号
EHEALTH_CARD = "urn:jianhu:sid:ehealth-card"  # 电子健康卡ID

SYSTEMS = {
    RESIDENT_ID_CARD: "居民身份证",
    INSURANCE_CARD: "医保卡号",
    VISIT_CARD: "就诊卡号",
    OUTPATIENT_NUMBER: "门诊号",
    INPATIENT_NUMBER: "住院号",
    MEDICAL_RECORD_NUMBER: "病案号",
    EHEALTH_CARD: "电子健康卡ID",
}

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"  # ISO 7064 MOD 11-2 check character for remainders 0..10


def id_card_problem(number: str) -> str | None:
    """Why an 18-digit resident ID number is not valid, or None. The address code is not
    looked up: division codes change and old numbers stay valid."""
    text = number.upper()
    if len(text) != 18 or not text[:17].isdigit():
        return "a resident ID number has 17 digits and a check character"
    try:
        date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return "positions 7-14 of a resident ID number must be a birth date"
    expected = _CHECK[
        sum(int(digit) * weight for digit, weight in zip(text[:17], _WEIGHTS, strict=True)) % 11
    ]
    if text[17] != expected:
        return "the check character of the resident ID number is wrong (GB 11643)"
    return None
