"""The epidemic-prevention indicators (S1) as data: each names the platform's column it fills
and how it is counted on the clinical store for one business day (Asia/Shanghai). The platform's
own specification is not public, so the catalogue is a site table (``epidemic-indicators.json``
in ``JIANHU_CONFIG_DIR``) whose shipped defaults follow the public facts: fever-clinic visits,
observation stays, nucleic-acid and antigen tests done and positive, admissions, discharges,
patients in hospital, open beds, in the pinyin-initial column style of the regional platforms.

Kinds of count:
- ``visits``: Encounters that started that day, of the given classes (AMB, EMER, IMP, OBSENC)
  and, when given, at the given clinics or wards (PV1-3 point of care: the Location's code);
- ``discharges``: Encounters that ended that day, of the given classes;
- ``in_hospital``: Encounters of the given classes in progress at the day's end;
- ``tests`` / ``positives``: Observations of the given codes (``system|code``) taken that day,
  all of them or those read positive (interpretation POS, A, H, or a positive coded value);
- ``constant``: a number the site states (open beds)."""

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from hub.base import site_files

FILE = "epidemic-indicators.json"
Kind = Literal["visits", "discharges", "in_hospital", "tests", "positives", "constant"]


class Indicator(BaseModel, frozen=True):
    code: str  # the platform's indicator code
    name: str  # 指标名称
    column: str  # the platform's column it fills
    kind: Kind
    classes: tuple[str, ...] = ()  # Encounter.class codes
    locations: tuple[str, ...] = ()  # clinic or ward codes (PV1-3.1)
    tests: tuple[str, ...] = ()  # Observation codes, "system|code" or "code"
    value: float = 0  # for a constant

    @model_validator(mode="after")
    def _complete(self) -> "Indicator":
        if self.kind in ("tests", "positives") and not self.tests:
            raise ValueError(f"{self.code}: a {self.kind} indicator names its test codes")
        if self.kind in ("visits", "discharges", "in_hospital") and not self.classes:
            raise ValueError(f"{self.code}: a {self.kind} indicator names its encounter classes")
        return self


class Catalogue(BaseModel, frozen=True):
    indicators: tuple[Indicator, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> "Catalogue":
        columns = [i.column for i in self.indicators]
        if len(columns) != len(set(columns)):
            raise ValueError("two indicators fill one column")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(indicator.column for indicator in self.indicators)


def parse(raw: Any) -> Catalogue:
    return Catalogue.model_validate(raw)


def catalogue() -> Catalogue:
    return parse(site_files.read_json("adapters.epidemic", f"data/{FILE}"))
