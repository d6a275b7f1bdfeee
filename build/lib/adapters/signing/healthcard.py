"""The e-health-card "erhc" gateway (mobilepay_evoucher_healthcard.md §4): an SM3 digest over
the sorted fields and an SM4-ECB `biz_content`; the unverified choices are options."""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from adapters.signing.common import (
    Clock,
    b64decode_field,
    canonical_json,
    dump_body,
    json_object,
    render_value,
    require,
    utf8,
)
from adapters.signing.gm import (
    InvalidSignatureError,
    parse_hex,
    sm3_hex,
    sm4_decrypt_ecb,
    sm4_encrypt_ecb,
)

# --------------------------------------------------------------------------------------------
# mobilepay_evoucher_healthcard.md §4: e-health-card "erhc" gateway (SM3 digest, SM4 biz)
# --------------------------------------------------------------------------------------------

HEALTHCARD_DIGEST_FIELDS: Final = (
    "app_id",
    "biz_content",
    "digest_type",
    "enc_type",
    "method",
    "term_id",
    "timestamp",
    "version",
)
"""The fields of the digest string, already in sorted order (spec §4)."""


@dataclass(frozen=True)
class HealthCardOptions:
    """The choices public implementations disagree on (spec §4 and open question 5).

    Defaults follow the Sichuan/Chengdu client [EHC-SC]: digest over the plain biz_content,
    `&app_secret=<secret>` appended, the 16-character secret itself as the SM4 key, cipher
    text in Base64.
    """

    secret_suffix: Literal["param", "raw"] = "param"  # "&app_secret=<s>" or "<s>" appended
    digest_over: Literal["plain", "cipher"] = "plain"
    cipher_encoding: Literal["base64", "hex"] = "base64"
    key_encoding: Literal["utf8", "hex"] = "utf8"  # the secret as 16 bytes, or as 32 hex
    digest_uppercase: bool = False


@dataclass(frozen=True)
class HealthCardConfig:
    app_id: str
    app_secret: str = field(repr=False)
    version: str
    term_id: str = ""
    options: HealthCardOptions = field(default_factory=HealthCardOptions)

    def __post_init__(self) -> None:
        require("e-health-card app_id", self.app_id)
        require("e-health-card version", self.version)
        healthcard_sm4_key(self.app_secret, self.options)


def healthcard_sm4_key(app_secret: str, options: HealthCardOptions) -> bytes:
    require("e-health-card app secret", app_secret)
    if options.key_encoding == "hex":
        key = parse_hex("e-health-card app secret", app_secret)
    else:
        key = utf8(app_secret)
    if len(key) != 16:
        raise ValueError(
            f"e-health-card app secret must give a 16-byte SM4 key ({options.key_encoding}), "
            f"got {len(key)} bytes"
        )
    return key


def healthcard_encrypt_biz(plain: str, app_secret: str, options: HealthCardOptions) -> str:
    cipher = sm4_encrypt_ecb(healthcard_sm4_key(app_secret, options), utf8(plain))
    if options.cipher_encoding == "hex":
        return cipher.hex().upper()
    return base64.b64encode(cipher).decode("ascii")


def healthcard_decrypt_biz(cipher_text: str, app_secret: str, options: HealthCardOptions) -> str:
    if options.cipher_encoding == "hex":
        cipher = parse_hex("biz_content", cipher_text)
    else:
        cipher = b64decode_field("biz_content", cipher_text)
    plain = sm4_decrypt_ecb(healthcard_sm4_key(app_secret, options), cipher)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("decrypted biz_content is not UTF-8 (wrong app secret?)") from None


def healthcard_digest_string(
    fields: Mapping[str, Any], app_secret: str, options: HealthCardOptions
) -> str:
    """`app_id=…&biz_content=…&…&version=…` then the secret; biz_content as given (the caller
    passes plain or cipher text according to options.digest_over). Empty values stay in."""
    require("e-health-card app secret", app_secret)
    parts = []
    for key in HEALTHCARD_DIGEST_FIELDS:
        rendered = render_value(fields.get(key))
        if rendered is None:
            raise ValueError(f"e-health-card digest needs the field {key!r}")
        parts.append(f"{key}={rendered}")
    joined = "&".join(parts)
    if options.secret_suffix == "param":
        return f"{joined}&app_secret={app_secret}"
    return joined + app_secret


def healthcard_digest(
    fields: Mapping[str, Any], app_secret: str, options: HealthCardOptions
) -> str:
    digest = sm3_hex(utf8(healthcard_digest_string(fields, app_secret, options)))
    return digest.upper() if options.digest_uppercase else digest


def seal_healthcard_request(
    method: str, biz: Any, config: HealthCardConfig, *, timestamp_ms: int
) -> dict[str, str]:
    """The request of spec §4: common fields, SM4 biz_content and the SM3 digest."""
    require("e-health-card method", method)
    plain = biz if isinstance(biz, str) else canonical_json(biz)
    options = config.options
    request = {
        "app_id": config.app_id,
        "term_id": config.term_id,
        "method": method,
        "version": config.version,
        "timestamp": str(int(timestamp_ms)),
        "enc_type": "SM4",
        "digest_type": "SM3",
        "biz_content": healthcard_encrypt_biz(plain, config.app_secret, options),
    }
    hashed = dict(request, biz_content=plain) if options.digest_over == "plain" else request
    request["digest"] = healthcard_digest(hashed, config.app_secret, options)
    return request


def open_healthcard_response(
    response: Mapping[str, Any], config: HealthCardConfig, *, check_digest: bool = True
) -> dict[str, Any]:
    """Decrypt biz_content (into parsed JSON) and, when the response carries a digest, check
    it the way requests are digested. Whether responses are digested the same way is not
    confirmed; pass check_digest=False if a platform's responses fail this check."""
    fields = dict(response)
    cipher_text = fields.get("biz_content")
    plain = None
    if cipher_text not in (None, ""):
        plain = healthcard_decrypt_biz(str(cipher_text), config.app_secret, config.options)
    if check_digest and fields.get("digest") not in (None, ""):
        hashed = fields
        if config.options.digest_over == "plain":
            hashed = dict(fields, biz_content=plain or "")
        expected = healthcard_digest(hashed, config.app_secret, config.options)
        if not hmac.compare_digest(expected.lower(), str(fields["digest"]).lower()):
            raise InvalidSignatureError("e-health-card response digest does not match")
    if plain is not None:
        try:
            fields["biz_content"] = json.loads(plain)
        except ValueError:
            raise ValueError("decrypted biz_content is not JSON") from None
    return fields


@dataclass(frozen=True)
class HealthCardSigner:
    """Body in: `{"method": ..., "biz_content": {...}}`. Body out: the sealed request."""

    config: HealthCardConfig
    clock: Clock = time.time

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, str], bytes]:
        fields = json_object(body, "e-health-card request body")
        if "method" not in fields or "biz_content" not in fields:
            raise ValueError("e-health-card request body needs 'method' and 'biz_content'")
        sealed = seal_healthcard_request(
            str(fields["method"]),
            fields["biz_content"],
            self.config,
            timestamp_ms=int(self.clock() * 1000),
        )
        return dict(headers), dump_body(sealed)
