"""The mobile-pay envelope (mobilepay_evoucher_healthcard.md §2): SM4 `encData` and an SM2
`signData` over the spec's sign string; sealing requests and opening answers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from adapters.signing.common import (
    Clock,
    b64decode_field,
    canonical_json,
    dump_body,
    json_object,
    require,
    sorted_kv_string,
    utf8,
)
from adapters.signing.gm import (
    SM2_DEFAULT_UID,
    InvalidSignatureError,
    SignatureFormat,
    Sm2PrivateKey,
    Sm2PublicKey,
    parse_hex,
    sm4_decrypt_ecb,
    sm4_encrypt_ecb,
)

# --------------------------------------------------------------------------------------------
# mobilepay_evoucher_healthcard.md §2: mobile-pay envelope (SM4 encData + SM2 signData)
# --------------------------------------------------------------------------------------------

MOBILEPAY_UNSIGNED: Final = frozenset({"signData", "encData", "extra"})
"""Fields left out of the sign string (spec §2.2 step 1)."""


def mobilepay_sign_string(fields: Mapping[str, Any], app_secret: str) -> str:
    """Spec §2.2 steps 1-4: drop signData/encData/extra and empty values, sort keys (ASCII),
    join `k=v` with '&' (objects as canonical JSON), append `&key=<appSecret>`."""
    require("mobile-pay appSecret", app_secret)
    return f"{sorted_kv_string(fields, exclude=MOBILEPAY_UNSIGNED)}&key={app_secret}"


def mobilepay_data_key(app_id: str, app_secret: str) -> bytes:
    """Spec §2.3: K = first 16 characters of upper-case hex of SM4-ECB(appId[:16], appSecret),
    used as 16 ASCII bytes. PKCS#7 padding only matters for secrets under 16 bytes."""
    require("mobile-pay appId", app_id)
    require("mobile-pay appSecret", app_secret)
    id_bytes = utf8(app_id)
    if len(id_bytes) < 16:
        raise ValueError("mobile-pay appId must be at least 16 bytes: its first 16 are a key")
    cipher = sm4_encrypt_ecb(id_bytes[:16], utf8(app_secret))
    return cipher.hex().upper()[:16].encode("ascii")


def mobilepay_encrypt_data(data: Any, app_id: str, app_secret: str) -> str:
    """encData = upper-case hex of SM4-ECB/PKCS#7(K, canonical JSON of data)."""
    key = mobilepay_data_key(app_id, app_secret)
    return sm4_encrypt_ecb(key, utf8(canonical_json(data))).hex().upper()


def mobilepay_decrypt_data(enc_data: str, app_id: str, app_secret: str) -> Any:
    key = mobilepay_data_key(app_id, app_secret)
    plain = sm4_decrypt_ecb(key, parse_hex("encData", enc_data))
    try:
        return json.loads(plain.decode("utf-8"))
    except ValueError:
        raise ValueError("decrypted encData is not UTF-8 JSON (wrong appId/appSecret?)") from None


@dataclass(frozen=True)
class MobilePayConfig:
    """Per-channel settings; version and signature encoding are unverified (spec §2, OQ 4)."""

    app_id: str
    app_secret: str = field(repr=False)
    private_key: Sm2PrivateKey = field(repr=False)
    platform_public_key: Sm2PublicKey
    version: str = "2.0.1"
    uid: bytes = SM2_DEFAULT_UID
    signature_format: SignatureFormat = "der"

    def __post_init__(self) -> None:
        mobilepay_data_key(self.app_id, self.app_secret)  # fail at start-up, not mid-request


def seal_mobilepay_request(
    fields: Mapping[str, Any], config: MobilePayConfig, *, timestamp_ms: int
) -> dict[str, Any]:
    """Turn `{..., "data": {...}}` into the signed, encrypted request of spec §2.1.

    The signature covers the plain data node (it is not in the excluded set), so sign first,
    then encrypt and remove data, as the spec orders the steps.
    """
    if "data" not in fields:
        raise ValueError("a mobile-pay request needs its 'data' node")
    request = {k: v for k, v in fields.items() if k not in ("encData", "signData")}
    request.update(
        appId=config.app_id,
        encType="SM4",
        signType="SM2",
        timestamp=str(int(timestamp_ms)),
        version=config.version,
    )
    sign_string = mobilepay_sign_string(request, config.app_secret)
    signature = config.private_key.sign(
        utf8(sign_string), uid=config.uid, fmt=config.signature_format
    )
    request["encData"] = mobilepay_encrypt_data(
        request.pop("data"), config.app_id, config.app_secret
    )
    request["signData"] = base64.b64encode(signature).decode("ascii")
    return request


def open_mobilepay_response(
    response: Mapping[str, Any], config: MobilePayConfig, *, require_signature: bool = True
) -> dict[str, Any]:
    """Decrypt encData into `data`, then verify signData with the platform key (spec §2.2
    step 6) over the same sign string, plain data included. Returns the fields without
    signData/encData. Raises InvalidSignatureError (a ValueError) on a bad or missing
    signature, ValueError on undecryptable data."""
    fields = dict(response)
    sign_data = fields.pop("signData", None)
    enc_data = fields.pop("encData", None)
    if enc_data not in (None, ""):
        fields["data"] = mobilepay_decrypt_data(enc_data, config.app_id, config.app_secret)
    if sign_data in (None, ""):
        if require_signature:
            raise InvalidSignatureError("mobile-pay response carries no signData")
        return fields
    signature = b64decode_field("signData", sign_data)
    config.platform_public_key.verify(
        utf8(mobilepay_sign_string(fields, config.app_secret)),
        signature,
        uid=config.uid,
        fmt=config.signature_format,
    )
    return fields


@dataclass(frozen=True)
class MobilePaySigner:
    """Body in: the request JSON with its plain `data` node. Body out: the sealed envelope."""

    config: MobilePayConfig
    clock: Clock = time.time

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, str], bytes]:
        fields = json_object(body, "mobile-pay request body")
        sealed = seal_mobilepay_request(fields, self.config, timestamp_ms=int(self.clock() * 1000))
        return dict(headers), dump_body(sealed)
