"""Checking one result against the 危急值 rules (``hub.lab.critical_rules``): ``check`` reads an
Observation as the ORU mapping produces it (with its patient, for age band and sex) and returns
its findings: below or above a limit, a critical code, a flag the LIS set that no rule here
knows, or a unit or a value a person must judge. Units are compared, never converted."""

import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.lab.critical_rules import (
    CodedRule,
    CriticalRules,
    TestRule,
    codes_of,
    load_rules,
)


class FindingKind(StrEnum):
    LOW = "critical-low"  # 低于危急值下限
    HIGH = "critical-high"  # 高于危急值上限
    CODED = "critical-coded"  # 阳性 and the like
    LAB_FLAG = "lab-flagged"  # the LIS flagged it (HH/LL/AA) though no rule here did
    UNIT_MISMATCH = "unit-mismatch"  # not comparable: a person decides
    INDETERMINATE = "indeterminate"  # "<3.0" against a lower limit of 2.8: a person decides


CRITICAL_KINDS = frozenset(
    {FindingKind.LOW, FindingKind.HIGH, FindingKind.CODED, FindingKind.LAB_FLAG}
)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    test: str  # rule id, or the Observation's code when only the LIS flagged it
    name: str
    value: str  # as shown: "6.8 mmol/L"
    limit: str  # what it was held against: "> 6.2 mmol/L", "阳性", "mmol/L"
    band: str
    sex: str | None
    text: str  # the sentence for the screen and the notification

    @property
    def critical(self) -> bool:
        return self.kind in CRITICAL_KINDS

    def as_json(self) -> Json:
        return {
            "kind": self.kind.value,
            "critical": self.critical,
            "test": self.test,
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "band": self.band,
            "sex": self.sex,
            "text": self.text,
        }


def check(
    observation: Json,
    patient: Json | None = None,
    *,
    rules: CriticalRules | None = None,
    today: date | None = None,
) -> list[Finding]:
    """The critical findings of one result. Age is taken at the result's effective time (or
    ``today``); a patient without birth date is judged as ``default_band`` (adult)."""
    rules = rules or load_rules()
    if observation.get("status") not in rules.checked_statuses:
        return []
    sex = _sex(patient)
    on = _effective_date(observation) or today or datetime.now(HOSPITAL).date()
    band = rules.band_of(_birth_date(patient), on)
    rule = rules.rule_for(observation)
    context = (
        _Context(rule.id, rule.name, band, sex)
        if rule is not None
        else _Context(_first_code(observation), code_name(observation), band, sex)
    )
    found: list[Finding] = []
    if rule is not None and "valueQuantity" in observation and rule.limits:
        found.extend(_quantity(rule, observation["valueQuantity"], context))
    elif rule is not None and rule.coded is not None:
        found.extend(_coded(rule.coded, observation, context))
    # The LIS's own critical flag is never dropped, even where these rules see nothing (a test
    # without a rule here, or limits that differ): a person looks at it.
    flags = "/".join(sorted(_interpretations(observation) & rules.lab_flags))
    if flags and not any(f.critical for f in found):
        value = shown_value(observation)
        text = f"{context.name} {value}，检验系统标记为危急（{flags}）"
        found.append(context.finding(FindingKind.LAB_FLAG, value, flags, text))
    return found


@dataclass(frozen=True)
class _Context:
    test: str
    name: str
    band: str
    sex: str | None

    def finding(self, kind: FindingKind, value: str, limit: str, text: str) -> Finding:
        return Finding(kind, self.test, self.name, value, limit, self.band, self.sex, text)


def _quantity(rule: TestRule, quantity: Json, context: _Context) -> list[Finding]:
    number = quantity.get("value")
    if not isinstance(number, int | float) or isinstance(number, bool) or math.isnan(number):
        return []
    unit = str(quantity.get("unit") or quantity.get("code") or "")
    comparator = quantity.get("comparator")
    shown = f"{comparator or ''}{number:g} {unit}".strip()
    name = context.name
    if not rule.accepts_unit(quantity):
        wanted = "、".join(u or "无单位" for u in rule.units)
        return [
            context.finding(
                FindingKind.UNIT_MISMATCH,
                shown,
                wanted,
                f"{name} {shown}：单位与危急值规则（{wanted}）不符，未比较，请人工核对",
            )
        ]
    limit = rule.limit_for(context.band, context.sex)
    if limit is None:
        return []
    # A comparator leaves one end open: "<0.01" can be anything below. Judged definitively only
    # when the whole range is beyond a limit; a range across a limit goes to a person.
    lower = number if comparator in (None, ">", ">=") else -math.inf
    upper = number if comparator in (None, "<", "<=") else math.inf
    unit_text = f" {unit}" if unit else ""
    if limit.low is not None and upper < limit.low:
        text = f"{name} {shown}，低于危急值下限 {limit.low:g}{unit_text}"
        return [context.finding(FindingKind.LOW, shown, f"< {limit.low:g}{unit_text}", text)]
    if limit.high is not None and lower > limit.high:
        text = f"{name} {shown}，高于危急值上限 {limit.high:g}{unit_text}"
        return [context.finding(FindingKind.HIGH, shown, f"> {limit.high:g}{unit_text}", text)]
    crossing = (limit.low is not None and lower < limit.low) or (
        limit.high is not None and upper > limit.high
    )
    if crossing:
        bounds = " / ".join(
            s
            for s in (
                f"< {limit.low:g}" if limit.low is not None else "",
                f"> {limit.high:g}" if limit.high is not None else "",
            )
            if s
        )
        text = f"{name} {shown}：无法判断是否达到危急值（{bounds}{unit_text}），请人工核对"
        return [context.finding(FindingKind.INDETERMINATE, shown, bounds, text)]
    return []


def _coded(rule: CodedRule, observation: Json, context: _Context) -> list[Finding]:
    concept = observation.get("valueCodeableConcept")
    codes = codes_of(concept)
    text = str(observation.get("valueString") or (concept or {}).get("text") or "")
    shown = shown_value(observation)
    critical = (
        bool(codes & rule.critical)
        or bool(_interpretations(observation) & rule.critical_interpretations)
        or bool(codes - rule.not_critical and rule.other_codes_critical)
    )
    if not critical and not codes and text:
        # negative phrases are taken out first, so 未检出 does not read as 检出 and 革兰阴性杆菌
        # in a positive report does not read as 阴性
        rest = text.lower()
        for phrase in rule.not_critical_texts:
            rest = rest.replace(phrase.lower(), " ")
        critical = any(phrase.lower() in rest for phrase in rule.critical_texts)
    if not critical:
        return []
    return [
        context.finding(FindingKind.CODED, shown, "阳性", f"{context.name} {shown}（危急结果）")
    ]


# ---------------------------------------------------------------------------------------------
# Reading FHIR


def _interpretations(observation: Json) -> frozenset[str]:
    return frozenset(
        code for concept in observation.get("interpretation", ()) for _, code in codes_of(concept)
    )


def _first_code(observation: Json) -> str:
    return min((code for _, code in codes_of(observation.get("code"))), default="")


def code_name(observation: Json) -> str:
    concept = observation.get("code") or {}
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", ()):
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding["code"])
    return "未命名项目"


def shown_value(observation: Json) -> str:
    if quantity := observation.get("valueQuantity"):
        number = quantity.get("value")
        shown = f"{number:g}" if isinstance(number, int | float) else str(number)
        return f"{quantity.get('comparator') or ''}{shown} {quantity.get('unit') or ''}".strip()
    if concept := observation.get("valueCodeableConcept"):
        if concept.get("text"):
            return str(concept["text"])
        codings = concept.get("coding") or [{}]
        return str(codings[0].get("display") or codings[0].get("code") or "")
    if ranged := observation.get("valueRange"):
        low, high = ranged.get("low") or {}, ranged.get("high") or {}
        unit = high.get("unit") or low.get("unit") or ""
        return f"{low.get('value', '')}-{high.get('value', '')} {unit}".strip()
    if ratio := observation.get("valueRatio"):
        numerator, denominator = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        return f"{numerator.get('value', '')}:{denominator.get('value', '')}"
    return str(observation.get("valueString") or "")


def _sex(patient: Json | None) -> str | None:
    gender = (patient or {}).get("gender")
    return gender if gender in ("male", "female") else None


def _birth_date(patient: Json | None) -> date | None:
    """A partial birth date (1978, 1978-12) counts from its first day: only a neonate's band
    depends on days, and a neonate's birth date is always complete."""
    text = (patient or {}).get("birthDate")
    if not isinstance(text, str):
        return None
    parts = text.split("-")
    try:
        return date(
            int(parts[0]),
            int(parts[1]) if len(parts) > 1 else 1,
            int(parts[2][:2]) if len(parts) > 2 else 1,
        )
    except (ValueError, IndexError):
        return None


def _effective_date(observation: Json) -> date | None:
    text = observation.get("effectiveDateTime") or (observation.get("effectivePeriod") or {}).get(
        "start"
    )
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    # the local date counts for age: a result at 00:30 Shanghai time is on that day
    return moment.astimezone(HOSPITAL).date() if moment.tzinfo else moment.date()
