"""危急值 (critical values): the rules that say a result puts the patient in immediate danger,
and how an alert escalates (``hub.lab.critical_check`` holds one result against them). The
rules (``fhir_profiles/data/lab-critical-values.json``) name each test by its
LOINC and local LIS codes and give low/high limits by age band (新生儿, 儿童, 成人) and sex; units
are compared, never converted, so a value in another unit is a finding for a person ("unit
mismatch") rather than a silent pass. Coded tests (血培养阳性) list their critical and normal
codes."""

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from hub.base.json import Json
from hub.base.site_files import read_json

Code = tuple[str, str]  # (system, code)


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Limit:
    """Critical when value < low or value > high; a missing band or sex applies to all."""

    band: str | None
    sex: str | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class CodedRule:
    """A test whose result is a code or a text (血培养): which answers are critical."""

    critical: frozenset[Code]
    not_critical: frozenset[Code]
    other_codes_critical: bool  # an organism code on a blood culture means it grew something
    critical_interpretations: frozenset[str]
    critical_texts: tuple[str, ...]
    not_critical_texts: tuple[str, ...]  # taken out first: 未检出 contains 检出


@dataclass(frozen=True)
class TestRule:
    id: str
    name: str
    codes: frozenset[Code]
    units: tuple[str, ...]
    limits: tuple[Limit, ...]
    coded: CodedRule | None

    def accepts_unit(self, quantity: Json) -> bool:
        accepted = {unit_key(u) for u in self.units}
        given = {unit_key(str(quantity.get(k) or "")) for k in ("code", "unit")}
        return bool(given & accepted)

    def limit_for(self, band: str, sex: str | None) -> Limit | None:
        """The band's own limits, else the general ones; the sex's own limit, else the one for
        both. With the sex unknown and only sex-specific limits, the tightest of them, so
        nobody's critical value is missed."""
        in_band = [x for x in self.limits if x.band == band] or [
            x for x in self.limits if x.band is None
        ]
        if not in_band:
            return None
        for candidate in in_band:
            if sex is not None and candidate.sex == sex:
                return candidate
        for candidate in in_band:
            if candidate.sex is None:
                return candidate
        lows = [x.low for x in in_band if x.low is not None]
        highs = [x.high for x in in_band if x.high is not None]
        return Limit(band, None, max(lows, default=None), min(highs, default=None))


@dataclass(frozen=True)
class AgeBand:
    band: str
    label: str
    below_days: int | None
    below_years: int | None

    def holds(self, birth: date, on: date) -> bool:
        if self.below_days is not None:
            return (on - birth).days < self.below_days
        if self.below_years is not None:
            return years_between(birth, on) < self.below_years
        return True


@dataclass(frozen=True)
class EscalationStep:
    level: int
    after: timedelta  # from the moment the alert was raised
    notify: str
    role: str


@dataclass(frozen=True)
class AlertPolicy:
    acknowledge_within: timedelta
    escalation: tuple[EscalationStep, ...]

    @classmethod
    def from_json(cls, data: Json) -> "AlertPolicy":
        steps = tuple(
            EscalationStep(
                int(s["level"]), timedelta(minutes=s["after_minutes"]), s["notify"], s["role"]
            )
            for s in data.get("escalation", ())
        )
        if [s.level for s in steps] != sorted({s.level for s in steps}) or [
            s.after for s in steps
        ] != sorted(s.after for s in steps):
            raise ValueError("escalation levels and delays must both increase")
        return cls(timedelta(minutes=data["acknowledge_within_minutes"]), steps)


@dataclass(frozen=True)
class CriticalRules:
    bands: tuple[AgeBand, ...]
    default_band: str  # used when the birth date is unknown
    checked_statuses: frozenset[str]
    withdrawn_statuses: frozenset[str]
    lab_flags: frozenset[str]
    tests: tuple[TestRule, ...]
    policy: AlertPolicy

    @classmethod
    def from_json(cls, data: Json) -> "CriticalRules":
        return cls(
            bands=tuple(
                AgeBand(b["band"], b["label"], b.get("below_days"), b.get("below_years"))
                for b in data["age_bands"]
            ),
            default_band=data["default_band"],
            checked_statuses=frozenset(data["checked_statuses"]),
            withdrawn_statuses=frozenset(data["withdrawn_statuses"]),
            lab_flags=frozenset(data["lab_flags"]),
            tests=tuple(_test_rule(t) for t in data["tests"]),
            policy=AlertPolicy.from_json(data["alerting"]),
        )

    def rule_for(self, observation: Json) -> TestRule | None:
        codes = codes_of(observation.get("code"))
        return next((t for t in self.tests if t.codes & codes), None)

    def band_of(self, birth: date | None, on: date) -> str:
        if birth is None or birth > on:
            return self.default_band
        return next((b.band for b in self.bands if b.holds(birth, on)), self.default_band)


def _test_rule(data: Json) -> TestRule:
    coded = data.get("coded")
    return TestRule(
        id=data["id"],
        name=data["name"],
        codes=frozenset((c["system"], c["code"]) for c in data["codes"]),
        units=tuple(data.get("units", ())),
        limits=tuple(
            Limit(x.get("band"), x.get("sex"), x.get("low"), x.get("high"))
            for x in data.get("limits", ())
        ),
        coded=None
        if coded is None
        else CodedRule(
            critical=frozenset((c["system"], c["code"]) for c in coded.get("critical", ())),
            not_critical=frozenset((c["system"], c["code"]) for c in coded.get("not_critical", ())),
            other_codes_critical=bool(coded.get("other_codes_critical", False)),
            critical_interpretations=frozenset(coded.get("critical_interpretations", ())),
            critical_texts=tuple(coded.get("critical_texts", ())),
            not_critical_texts=tuple(coded.get("not_critical_texts", ())),
        ),
    )


@cache
def load_rules() -> CriticalRules:
    return CriticalRules.from_json(read_json("fhir_profiles", "data/lab-critical-values.json"))


# ---------------------------------------------------------------------------------------------
# What a rule compares by (the check uses them too)


def codes_of(concept: Any) -> frozenset[Code]:
    if not isinstance(concept, dict):
        return frozenset()
    return frozenset(
        (str(c.get("system", "")), str(c["code"]))
        for c in concept.get("coding", ())
        if isinstance(c, dict) and c.get("code")
    )


def years_between(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def unit_key(unit: str) -> str:
    """Spellings of one unit the LIS and analysers send: 10^9/L, 10*9/L, ×10^9/L, μg/L."""
    key = unit.strip().replace(" ", "").replace("×", "").replace("^", "*")
    return key.replace("μ", "u").replace("µ", "u").lower()
