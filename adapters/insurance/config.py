"""The insurance platforms the hospital reaches and which one a person's visit goes to:
``JIANHU_INSURANCE__PLATFORMS`` (JSON: name -> ``InsurancePlatform``), ``__LOCAL`` (the city
or province platform for the hospital's own province) and ``__CROSS_PROVINCE`` (the national
out-of-province settlement, S3; the local one when unset). The Zhejiang specifications are not
public: every address, path and code is configuration."""

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from adapters.insurance.client import InsurancePlatform

Scope = Literal["local", "in-province", "cross-province"]


class InsuranceConfig(BaseModel):
    platforms: dict[str, InsurancePlatform] = Field(min_length=1)
    local: str
    cross_province: str = ""

    @model_validator(mode="after")
    def _named_platforms(self) -> "InsuranceConfig":
        for role, name in (("LOCAL", self.local), ("CROSS_PROVINCE", self.cross_province)):
            if name and name not in self.platforms:
                raise ValueError(f"{role} names {name!r}, which is not in PLATFORMS")
        return self

    def route(self, insuplc_admdvs: str) -> tuple[str, Scope]:
        """The platform and the scope of a visit, from the person's insured area (参保地,
        1101's ``insuplc_admdvs``) against the hospital's (就医地): the same 4 digits (city)
        local, the same 2 (province) in-province, else cross-province."""
        hospital = self.platforms[self.local].institution.mdtrtarea_admvs
        if not insuplc_admdvs or insuplc_admdvs[:4] == hospital[:4]:
            return self.local, "local"
        if insuplc_admdvs[:2] == hospital[:2]:
            return self.local, "in-province"
        return self.cross_province or self.local, "cross-province"
