"""Masking of patient identifiers for logs: the one helper every log line goes through.

Formats follow what Chinese hospital staff expect to see on screen and in audit logs:
ID card 330602********1234, name 张*, phone 138****5678.
"""

import re
from collections.abc import Mapping
from typing import Any

# 18-digit resident ID (last char may be X) or the old 15-digit form.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8}|\d{5})(\d{3}[\dXx]|\d)(?![0-9A-Za-z])")
# Mainland mobile numbers: 11 digits starting with 1[3-9].
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
# A quoted run of two to four Chinese characters, as an error message quotes a value
# ('刘洋', "欧阳娜娜"): most likely a person's name, masked like one.
_QUOTED_NAME = re.compile(r"(['\"])([\u4e00-\u9fff·]{2,4})\1")

# Keys whose values are always treated as patient data, whatever they look like.
SENSITIVE_KEYS = frozenset(
    {"name", "patient_name", "id_card", "idcard", "phone", "telecom", "mobile", "address"}
)


def mask_id_card(value: str) -> str:
    """330602199001011234 -> 330602********1234."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """13812345678 -> 138****5678."""
    digits = value.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(value: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧***; a Latin name keeps its first letter."""
    value = value.strip()
    if not value:
        return value
    return value[0] + "*" * max(len(value) - 1, 1)


def mask_text(text: str) -> str:
    """Mask every ID-card and phone number found in free text, and quoted Chinese names (names
    elsewhere in free text cannot be found reliably: ``hub.hl7v2.privacy`` masks a message's
    own names in texts about it)."""
    text = _ID_CARD.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3)[-4:], text)
    text = _QUOTED_NAME.sub(lambda m: m.group(1) + mask_name(m.group(2)) + m.group(1), text)
    return _PHONE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def mask_value(key: str, value: Any) -> Any:
    """Mask one structured log field by what its key says it holds."""
    if not isinstance(value, str):
        return value
    lowered = key.lower()
    if "name" in lowered and lowered in SENSITIVE_KEYS:
        return mask_name(value)
    if lowered in {"phone", "telecom", "mobile"}:
        return mask_phone(value)
    if lowered in {"id_card", "idcard"}:
        return mask_id_card(value)
    if lowered == "address":
        return value[:3] + "***" if len(value) > 3 else "***"
    return mask_text(value)


def mask_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Mask every field of a structured log record."""
    return {key: mask_value(key, value) for key, value in fields.items()}
