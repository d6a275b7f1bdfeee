"""How influenza cases are found on the clinical store (S5 流感病例提取规则) and what an
influenza-like illness is: a site table (``flu-rules.json`` in ``JIANHU_CONFIG_DIR``) whose
shipped defaults follow the public facts (ICD-10 J09-J11, 《流行性感冒诊疗方案（2025年版）》's
antivirals, the 2017 national surveillance plan's ILI definition and age bands). The city's
extraction rules are not public: local diagnosis codes, test codes, drug names, the monitored
clinics and the bands are all edits of the table.

A visit is a flu case on any of four grounds, each named in its record (识别依据):
- ``diagnosis``: a Condition of the visit coded under one of ``diagnosis_codes`` (a code and
  every code that extends it: J10 takes J10.0 and J10.000x001), or whose text names one of
  ``diagnosis_words``;
- ``complaint``: the visit's reason (主诉, Encounter.reasonCode) names one of the words;
- ``pathogen``: a flu test of the visit (``test_codes``) read positive;
- ``drug``: a prescription or administration of the visit names one of ``drug_names``."""

from functools import cached_property
from typing import Any

from pydantic import BaseModel, Field, model_validator

from hub.base import site_files

FILE = "flu-rules.json"
GROUNDS = ("diagnosis", "complaint", "pathogen", "drug")


class AgeBand(BaseModel, frozen=True):
    code: str  # the platform's code of the band
    name: str  # "0-4岁"
    below: int | None  # the first age (in whole years) no longer in the band; None: no limit


class IliRules(BaseModel, frozen=True):
    """流感样病例: fever (体温 >= ``fever_c``) with cough or sore throat, in the monitored
    clinics, counted per age band against all their visits."""

    fever_c: float = 38.0
    temperature_codes: tuple[str, ...] = ("8310-5", "8331-1", "8332-9", "8333-7")
    symptom_words: tuple[str, ...] = ("咳嗽", "咽痛", "咽喉痛", "咽部疼痛", "cough", "sore throat")
    symptom_codes: tuple[str, ...] = ("R05", "J02", "R07.0")
    clinics: tuple[
        str, ...
    ]  # clinic codes (PV1-3.1) or names: 内科门诊, 内科急诊, 发热门诊, 儿内科
    bands: tuple[AgeBand, ...] = Field(min_length=1)

    def band(self, age: int) -> AgeBand:
        for band in self.bands:
            if band.below is None or age < band.below:
                return band
        return self.bands[-1]


class CaseRules(BaseModel, frozen=True):
    diagnosis_codes: tuple[str, ...] = Field(min_length=1)
    diagnosis_words: tuple[str, ...] = ()
    complaint_words: tuple[str, ...] = ()
    test_codes: tuple[str, ...] = ()  # "system|code" or "code"
    drug_names: tuple[str, ...] = ()
    drug_codes: tuple[str, ...] = ()  # the hospital's own drug codes of the antivirals
    ili: IliRules

    @model_validator(mode="after")
    def _bands_in_order(self) -> "CaseRules":
        limits = [band.below for band in self.ili.bands]
        if None in limits[:-1] or limits[:-1] != sorted(x for x in limits[:-1] if x is not None):
            raise ValueError("ILI age bands go from the youngest up; only the last is open")
        return self

    @cached_property
    def _prefixes(self) -> tuple[str, ...]:
        return tuple(c.upper() for c in self.diagnosis_codes)

    def coded_flu(self, code: str) -> bool:
        """The code or one that extends it (ICD-10 and its national editions nest by suffix)."""
        return code.upper().startswith(self._prefixes)


def parse(raw: Any) -> CaseRules:
    return CaseRules.model_validate(raw)


def case_rules() -> CaseRules:
    return parse(site_files.read_json("adapters.surveillance", f"data/{FILE}"))
