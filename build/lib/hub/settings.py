"""The hub's one typed settings tree, read once at start-up from ``JIANHU_*`` variables.

Nested groups use a double underscore: ``JIANHU_BUS__PREFETCH=200``. Secrets are ``SecretStr``.
Every configuration error is reported at once (pydantic collects them), as one
``ConfigurationError`` whose message lists them all.
"""

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from adapters.drg.config import DrgConfig
from hub.errors import ConfigurationError


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


class BusSettings(BaseModel):
    """Message-bus behaviour; the same numbers apply to RabbitMQ and the embedded bus."""

    retry_delays_s: tuple[float, ...] = (5.0, 30.0, 300.0, 1800.0)
    delivery_limit: int = Field(20, ge=1, description="broker-side cap on redeliveries")
    prefetch: int = Field(200, ge=1, le=65535)
    publish_window: int = Field(256, ge=1, description="confirms in flight in a batch publish")
    handler_timeout_s: float = Field(300.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    reconnect_interval_s: float = Field(1.0, gt=0)
    # SQLite durability of the embedded bus: FULL survives power loss, NORMAL only a process crash.
    embedded_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    @field_validator("retry_delays_s")
    @classmethod
    def _delays_positive(cls, delays: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 for delay in delays):
            raise ValueError("every retry delay must be positive")
        return delays


class ListenerSettings(BaseModel):
    """One MLLP listener: who may send, in what character set, with what limits."""

    name: str = "default"
    port: int | None = Field(None, ge=0, le=65535)  # None: JIANHU_MLLP_PORT
    charset: str = "utf-8"  # what the senders really use; MSH-18 is only a hint
    fallback_charset: str = "gb18030"  # tried when the bytes are not valid in ``charset``
    trust_msh18: bool = False  # decode by MSH-18 when it names a known character set
    allowed_senders: tuple[str, ...] = ()  # "APP" or "APP^FACILITY" (MSH-3/MSH-4); empty: any
    allowed_peers: tuple[str, ...] = ()  # source addresses or networks (CIDR); empty: any
    processing_id: str = "P"  # MSH-11 this listener takes (P production, T training, D debug)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # a sender that falls silent this long is disconnected (it reconnects to send again);
    # with the connection cap, idle connections cannot use up the process's file descriptors
    idle_timeout_s: float = Field(120.0, gt=0)
    max_connections: int = Field(256, ge=1)  # more are refused at once, with a log line
    duplicate_window_s: float = Field(7 * 24 * 3600.0, ge=0)
    # senders ("APP", "APP^FACILITY" or "*") whose reused MSH-10 with other content is refused
    # with AE; from any other sender such a message is taken as a new one, linked and logged
    refuse_reused_control_id: tuple[str, ...] = ()
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


class Hl7Settings(BaseModel):
    listeners: tuple[ListenerSettings, ...] = (ListenerSettings(),)
    # a claimed message whose publish is not confirmed after this long is taken over by another
    # copy or the recovery (its process crashed or lost the bus)
    claim_grace_s: float = Field(10.0, gt=0)
    # messages archived but never published (a crash between the two): published by the
    # recovery at start and every claim_grace_s, or only flagged "stranded" for a person
    stranded: Literal["publish", "flag"] = "publish"
    # archive retention per message type in days, e.g. {"ORU^R01": 3650}; absent: kept forever
    retention_days: dict[str, float] = Field(default_factory=dict)
    # where senders that ask for application ACKs (MSH-16 AL/ER/SU) take them: "APP^FACILITY"
    # or "APP" -> "host:port", e.g. {"LIS": "10.1.2.3:2576"}
    application_ack: dict[str, str] = Field(default_factory=dict)
    message_types: tuple[str, ...] = (  # MSH-9 code^event taken; others get AR
        "ADT^A01",
        "ADT^A02",
        "ADT^A03",
        "ADT^A04",
        "ADT^A05",
        "ADT^A06",
        "ADT^A08",
        "ADT^A11",
        "ADT^A13",
        "ADT^A40",
        "ORM^O01",
        "OML^O21",
        "ORU^R01",
        "MDM^T02",
        "SIU^S12",
        "SIU^S13",
        "SIU^S14",
        "SIU^S15",
        "DFT^P03",
        "ORL^O22",  # the LIS's order acknowledgements and SSU^U03 specimen status updates: no
        "SSU^U03",  # FHIR of their own, archived, and read by the lab's specimen tracking
    )

    @field_validator("application_ack")
    @classmethod
    def _host_and_port(cls, endpoints: dict[str, str]) -> dict[str, str]:
        for sender, endpoint in endpoints.items():
            host, _, port = endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{sender}: {endpoint!r} is not host:port")
        return endpoints

    def application_ack_endpoint(self, application: str, facility: str) -> tuple[str, int] | None:
        endpoint = self.application_ack.get(f"{application}^{facility}") or (
            self.application_ack.get(application)
        )
        if endpoint is None:
            return None
        host, _, port = endpoint.rpartition(":")
        return host, int(port)


class JwtSettings(BaseModel):
    """JWT bearer tokens (besides the static API keys). Configure a secret (HS256) or a public
    key (RS256); with neither, only API keys are accepted."""

    hs256_secret: SecretStr = SecretStr("")
    rs256_public_key: SecretStr = SecretStr("")  # PEM text
    issuer: str = ""  # required "iss" when set
    audience: str = ""  # required "aud" when set
    role_claim: str = "role"  # one of the hub's roles; default clinician
    leeway_s: float = Field(30.0, ge=0)


class FhirSettings(BaseModel):
    """The FHIR API: its public base URL (behind a proxy) and request limits."""

    base_url: str = ""  # empty: taken from each request's scheme and host
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    validate_input: bool = True  # validate every resource a client writes
    # a search's query string (or _search form body): longer ones get 414; POST _search exists
    # for long criteria, and even those stay far below what a query plan can take
    max_query_bytes: int = Field(16 * 1024, ge=1024)
    max_bundle_entries: int = Field(1000, ge=1, le=10_000)
    # what one request may cost: the answer's size and the time it runs (a batch of searches
    # with _include can otherwise fill memory and hold the event loop); over either: 413
    max_response_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024)
    max_request_s: float = Field(30.0, gt=0)


class LabSettings(BaseModel):
    """The lab turnaround screen (S8)."""

    # the wall display on the lab's trusted network shows the screen, its snapshot and its
    # live stream without a token; acknowledgements always need one
    open_screen: bool = False
    # how far back a restart looks for tubes in flight, taken-in-charge alerts and open
    # critical values (the longest TAT rule, with margin)
    rebuild_hours: float = Field(48.0, gt=0, le=24 * 31)


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
    lab: LabSettings = LabSettings()
    drg: DrgConfig | None = None  # the city DRG platform (S7); unset: its uploads wait

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


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; report every problem together, with the variable to fix.

    ``JIANHU_SECRETS_DIR`` names a directory of secret files (one per setting, file name
    ``jianhu_<setting>``), as Docker and Kubernetes mount them.
    """
    secrets_dir = os.environ.get("JIANHU_SECRETS_DIR")
    try:
        return Settings(_secrets_dir=secrets_dir, **overrides)
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
