"""The HL7 v2 intake's settings (``JIANHU_HL7__*``): listeners, duplicates, recovery, retention,
application ACKs and the message types taken."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator


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
        "ADT^A28",
        "ADT^A31",
        "ADT^A40",
        "ORM^O01",
        "OML^O21",
        "OMI^O23",
        "RDE^O11",  # pharmacy: prescriptions and their administrations
        "RAS^O17",
        "ORU^R01",
        "MDM^T02",
        "SIU^S12",
        "SIU^S13",
        "SIU^S14",
        "SIU^S15",
        "DFT^P03",
        "MFN^M02",  # the HIS's staff and location master files
        "MFN^M05",
        "ORL^O22",  # the LIS's order acknowledgements and SSU^U03 specimen status updates: a
        "SSU^U03",  # Task and the Specimens' latest status, and the lab's specimen tracking
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
