"""The hub's one typed settings tree, read once at start-up from ``JIANHU_*`` variables.

Nested groups use a double underscore: ``JIANHU_BUS__PREFETCH=200``. Secrets are ``SecretStr``.
Every configuration error is reported at once (pydantic collects them), as one
``ConfigurationError`` whose message lists them all.
"""

import os
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, create_model, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from hub.base.errors import ConfigurationError
from hub.bus.settings import BusSettings
from hub.fhir.settings import FhirSettings
from hub.hl7v2.settings import Hl7Settings


class Role(StrEnum):
    """What a caller of the HTTP APIs may do; each API key carries one role."""

    ADMIN = "admin"  # everything
    CLINICIAN = "clinician"  # read and write clinical data
    SYSTEM = "system"  # another system (HIS, LIS, PACS) feeding or reading the hub
    OPS = "ops"  # operations: queues, dead letters, ledger, replay
    SCREEN = "screen"  # the lab wall display: read-only dashboards


class ApiKey(BaseModel, frozen=True):
    key: SecretStr
    role: Role


class JwtSettings(BaseModel):
    """JWT bearer tokens (besides the static API keys). Configure a secret (HS256) or a public
    key (RS256); with neither, only API keys are accepted."""

    hs256_secret: SecretStr = SecretStr("")
    rs256_public_key: SecretStr = SecretStr("")  # PEM text
    issuer: str = ""  # required "iss" when set
    audience: str = ""  # required "aud" when set
    role_claim: str = "role"  # one of the hub's roles; default clinician
    leeway_s: float = Field(30.0, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JIANHU_",
        env_nested_delimiter="__",
        secrets_dir=None,
        extra="ignore",
    )

    http_host: str = "0.0.0.0"
    http_port: int = Field(8080, ge=1, le=65535)
    mllp_port: int = Field(2575, ge=0, le=65535)  # 0: any free port (tests)
    data_dir: Path = Path("./data")
    # a folder of site tables read instead of the shipped ones (hub/base/site_files.py)
    config_dir: Path | None = None
    amqp_url: SecretStr = SecretStr("")  # empty: the embedded bus in data_dir
    mongo_url: SecretStr = SecretStr("")  # empty: the embedded SQLite store in data_dir
    api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = ()
    log_level: str = "INFO"
    shutdown_grace_s: float = Field(30.0, ge=0)
    # which work queues this process consumes: "all", "none" (an intake-only process: MLLP and
    # HTTP in, archive, publish) or a comma-separated list of queue names (``jianhu routes``)
    consume: str = "all"
    bus: BusSettings = BusSettings()
    fhir: FhirSettings = FhirSettings()
    jwt: JwtSettings = JwtSettings()
    hl7: Hl7Settings = Hl7Settings()
    # and one group per registered feature and adapter (``JIANHU_LAB__*``, ``JIANHU_DRG__*``),
    # added by ``load_settings`` from ``hub/registry.py``: read them with ``section``

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, raw: Any) -> Any:
        """``key1:admin,key2:screen`` -> ApiKey tuples; each malformed pair is named."""
        if not isinstance(raw, str):
            return raw
        keys, problems = [], []
        for pair in filter(None, (part.strip() for part in raw.split(","))):
            key, sep, role = pair.rpartition(":")
            if not sep or not key:
                problems.append("an entry is not key:role")
            elif role not in Role.__members__.values():
                problems.append(f"unknown role {role!r} (roles: {', '.join(Role)})")
            else:
                keys.append({"key": key, "role": role})
        if problems:
            raise ValueError("; ".join(problems))
        return tuple(keys)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        level = level.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @property
    def consumed(self) -> frozenset[str]:
        """``JIANHU_CONSUME`` as a set: queue names, or ``all`` / ``none``."""
        return frozenset(name.strip() for name in self.consume.split(",") if name.strip())

    @property
    def intake_only(self) -> bool:
        return self.consumed <= {"none"}

    def consumes(self, queue: str) -> bool:
        return "all" in self.consumed or queue in self.consumed

    @property
    def uses_embedded_bus(self) -> bool:
        return not self.amqp_url.get_secret_value()

    def section(self, name: str) -> Any:
        """The settings group of a feature or an adapter; None for an adapter not configured."""
        if name not in type(self).model_fields:
            raise KeyError(f"no settings group {name!r}: is its plugin in hub/registry.py?")
        return getattr(self, name)


@cache
def settings_model() -> type[Settings]:
    """``Settings`` with a group per registered feature (present with its defaults) and per
    adapter (None until configured): a new one declares its model in its own package."""
    # imported here, not at the top: the plugins name the web handlers, which read settings
    from hub.registry import ADAPTERS, FEATURES

    groups: dict[str, Any] = {
        feature.name: (feature.settings, feature.settings()) for feature in FEATURES
    }
    groups |= {adapter.name: (adapter.settings | None, None) for adapter in ADAPTERS}
    model: type[Settings] = create_model("Settings", __base__=Settings, **groups)
    return model


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; report every problem together, with the variable to fix.

    ``JIANHU_SECRETS_DIR`` names a directory of secret files (one per setting, file name
    ``jianhu_<setting>``), as Docker and Kubernetes mount them.
    """
    secrets_dir = os.environ.get("JIANHU_SECRETS_DIR")
    try:
        return settings_model()(_secrets_dir=secrets_dir, **overrides)
    except SettingsError as exc:  # a JSON-valued variable that is not JSON
        field = str(exc).partition('field "')[2].partition('"')[0].upper() or "?"
        named = sorted(
            name
            for name in os.environ
            if name.upper() == f"JIANHU_{field}" or name.upper().startswith(f"JIANHU_{field}__")
        )
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        raise ConfigurationError(
            f"invalid configuration:\n  {' or '.join(named) or 'JIANHU_' + field}: "
            f"not valid JSON{cause}"
        ) from exc
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            location = "__".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  JIANHU_{location}: {error['msg']}")
        raise ConfigurationError("invalid configuration:\n" + "\n".join(lines)) from exc
