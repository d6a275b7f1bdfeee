"""Finding the influenza cases of a period (see ``rules.py`` for the four grounds) and the
influenza-like illnesses of the monitored clinics, from what ``period.py`` read."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from adapters.surveillance.period import Period
from adapters.surveillance.rules import CaseRules
from hub.base.hospital_time import moment_of

Json = dict[str, Any]
POSITIVE_FLAGS = frozenset({"POS", "A", "H", "AA", "HH", "DET"})
POSITIVE_WORDS = ("阳性", "检出", "positive", "detected")
NEGATIVE_WORDS = ("阴性", "未检出", "negative", "not detected")


@dataclass
class Case:
    encounter: Json
    grounds: list[str]  # in the order of rules.GROUNDS
    diagnoses: list[Json] = field(default_factory=list)  # the flu diagnoses found

    @property
    def id(self) -> str:
        return str(self.encounter["id"])


def find_cases(period: Period, rules: CaseRules) -> list[Case]:
    """The visits that what was recorded in the period makes cases."""
    found = []
    for encounter_id, encounter in period.encounters.items():
        case = judge(
            encounter,
            period.conditions.get(encounter_id, []),
            period.observations.get(encounter_id, []),
            period.medications.get(encounter_id, []),
            rules,
        )
        if case is not None:
            found.append(case)
    return sorted(found, key=lambda case: case.id)


def judge(
    encounter: Json,
    conditions: Sequence[Json],
    observations: Sequence[Json],
    medications: Sequence[Json],
    rules: CaseRules,
) -> Case | None:
    """The visit as a case, on the grounds these resources of it give; None when none does."""
    if encounter.get("status") in ("cancelled", "entered-in-error", "planned"):
        return None
    grounds = []
    if not (conditions or observations or medications or encounter.get("reasonCode")):
        return None  # nothing recorded of the visit could make it a case
    diagnoses = [c for c in conditions if _flu_diagnosis(c, rules)]
    if diagnoses:
        grounds.append("diagnosis")
    if _names(_texts(encounter.get("reasonCode", [])), rules.complaint_words):
        grounds.append("complaint")
    if any(_flu_test(o, rules) and positive(o) for o in observations):
        grounds.append("pathogen")
    if any(_antiviral(m, rules) for m in medications):
        grounds.append("drug")
    return Case(encounter, grounds, diagnoses) if grounds else None


def judge_fever(encounter: Json, conditions: Sequence[Json], clinics: Sequence[str]) -> Case | None:
    """A fever-clinic visit is the fever report's case, whatever was diagnosed (its
    diagnoses are all it had)."""
    if encounter.get("status") in ("cancelled", "entered-in-error", "planned"):
        return None
    if _clinic(encounter, clinics) is None:
        return None
    return Case(encounter, ["fever"], list(conditions))


@dataclass(frozen=True)
class IliVisit:
    encounter: Json
    clinic: str
    ili: bool
    temperature: float | None


def monitored_visits(period: Period, rules: CaseRules) -> list[IliVisit]:
    """The visits of the monitored clinics that began in the period, each judged ILI or not:
    the highest temperature taken at the visit >= the threshold, and cough or sore throat in
    its reason (主诉) or its diagnoses."""
    ili = rules.ili
    found = []
    for encounter_id, encounter in period.encounters.items():
        clinic = _clinic(encounter, ili.clinics)
        if clinic is None or encounter.get("status") in ("cancelled", "entered-in-error"):
            continue
        began = moment_of((encounter.get("period") or {}).get("start"))
        if began is None or not period.start <= began < period.end:
            continue
        temperatures = [
            t
            for o in period.observations.get(encounter_id, [])
            if _coded(o, ili.temperature_codes) and (t := degrees_celsius(o)) is not None
        ]
        hottest = max(temperatures, default=None)
        texts = _texts(encounter.get("reasonCode", []))
        for condition in period.conditions.get(encounter_id, []):
            texts += _texts([condition.get("code") or {}])
        codes = [
            c
            for condition in period.conditions.get(encounter_id, [])
            for c in _codes(condition.get("code") or {})
        ]
        symptoms = _names(texts, ili.symptom_words) or any(
            code.upper().startswith(s.upper()) for code in codes for s in ili.symptom_codes
        )
        febrile = hottest is not None and hottest >= ili.fever_c
        found.append(IliVisit(encounter, clinic, febrile and symptoms, hottest))
    return found


def age_on(birth: str | None, day: date) -> int | None:
    """Whole years on ``day`` (a birth date of year or month precision: its first day)."""
    if not birth:
        return None
    parts = [int(p) for p in birth[:10].split("-")]
    year, month, dom = [*parts, 1, 1][:3]
    return day.year - year - ((day.month, day.day) < (month, dom))


def positive(observation: Json) -> bool:
    flags = {
        coding.get("code")
        for concept in observation.get("interpretation", [])
        for coding in concept.get("coding", [])
    }
    if flags & POSITIVE_FLAGS:
        return True
    value = observation.get("valueCodeableConcept") or {}
    text = " ".join(_texts([value])) + " " + str(observation.get("valueString") or "")
    text = text.lower()
    if any(word in text for word in NEGATIVE_WORDS):
        return False
    return any(word in text for word in POSITIVE_WORDS)


def _flu_diagnosis(condition: Json, rules: CaseRules) -> bool:
    if condition.get("verificationStatus", {}).get("coding", [{}])[0].get("code") in (
        "refuted",
        "entered-in-error",
    ):
        return False
    concept = condition.get("code") or {}
    if any(rules.coded_flu(code) for code in _codes(concept)):
        return True
    return _names(_texts([concept]), rules.diagnosis_words)


def _flu_test(observation: Json, rules: CaseRules) -> bool:
    return _coded(observation, rules.test_codes)


def _antiviral(medication: Json, rules: CaseRules) -> bool:
    if medication.get("status") in ("entered-in-error", "cancelled", "not-done"):
        return False
    concept = medication.get("medicationCodeableConcept") or {}
    if rules.drug_codes and any(code in rules.drug_codes for code in _codes(concept)):
        return True
    return _names(_texts([concept]), rules.drug_names)


def _coded(observation: Json, wanted: tuple[str, ...]) -> bool:
    codes = _as_set(wanted)
    for coding in (observation.get("code") or {}).get("coding", []):
        code = coding.get("code")
        if code in codes or f"{coding.get('system', '')}|{code}" in codes:
            return True
    return False


@cache
def _as_set(wanted: tuple[str, ...]) -> frozenset[str]:
    return frozenset(wanted)


def degrees_celsius(observation: Json) -> float | None:
    quantity = observation.get("valueQuantity") or {}
    value = quantity.get("value")
    if not isinstance(value, int | float):
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "Cel")
    return (value - 32) * 5 / 9 if unit in ("[degF]", "°F", "degF") else float(value)


def _codes(concept: Json) -> list[str]:
    return [str(c["code"]) for c in concept.get("coding", []) if c.get("code")]


def _texts(concepts: Sequence[Json]) -> list[str]:
    found = []
    for concept in concepts:
        if concept.get("text"):
            found.append(str(concept["text"]))
        found += [str(c["display"]) for c in concept.get("coding", []) if c.get("display")]
    return found


def _names(texts: Sequence[str], words: tuple[str, ...]) -> bool:
    if not texts:
        return False
    joined = "\n".join(texts).lower()
    return any(word in joined for word in _lowered(words))


@cache
def _lowered(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(word.lower() for word in words)


def _clinic(encounter: Json, clinics: Sequence[str]) -> str | None:
    for entry in encounter.get("location", []):
        where = entry.get("location") or {}
        code = (where.get("identifier") or {}).get("value")
        if code in clinics:
            return str(code)
        if where.get("display") in clinics:
            return str(where["display"])
    return None
