"""Request signing for the outbound gateways.

Sources (shared/specs): nhsa.md §1.1 (TIF PaaS headers) and §1.2 (Aliyun CSB),
mobilepay_evoucher_healthcard.md §2 (mobile-pay SM4 + SM2 envelope), §4 (e-health-card
"erhc" SM3 digest + SM4 biz_content) and §6.2 (regional SHA-256 request signature).

Every signer is a `Signer`: it takes the request about to be sent and returns the headers and
body to send instead. Nothing here opens a connection. Whatever the spec marks unverified is a
parameter, so a site can be switched over by configuration once its documents arrive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal, Protocol
from urllib.parse import parse_qsl

from adapters.signing.gm import (
    SM2_DEFAULT_UID,
    InvalidSignatureError,
    SignatureFormat,
    Sm2PrivateKey,
    Sm2PublicKey,
    parse_hex,
    sm3_hex,
    sm4_decrypt_ecb,
    sm4_encrypt_ecb,
)

Clock = Callable[[], float]
"""Returns Unix time in seconds (time.time); injected so tests can pin timestamps."""


class Signer(Protocol):
    """What a transport calls just before sending a request.

    Returns new headers and body; the inputs are left untouched. Signers built on SM2 spend
    about 10-20 ms of pure-Python CPU per call, so async transports should run them through
    asyncio.to_thread rather than on the event loop.
    """

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, str], bytes]: ...


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _utf8(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _require(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")


def _merge_headers(headers: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Copy headers and set extra, replacing any header of the same name in another case."""
    replaced = {name.lower() for name in extra}
    merged = {name: value for name, value in headers.items() if name.lower() not in replaced}
    merged.update(extra)
    return merged


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise ValueError(f"{what} is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


def _dump_body(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _b64decode(what: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"{what} is not valid Base64") from None


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_nulls(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Compact JSON, keys sorted at every level, null members left out, non-ASCII kept as is.

    Matches what the Java/C# SDKs produce (fastjson with sorted fields, Newtonsoft in the
    C# MedicareUtil), which both omit nulls; a mismatch here breaks every signature.
    """
    try:
        return json.dumps(
            _drop_nulls(value),
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:  # unsupported type, NaN or infinity
        raise ValueError(f"value cannot be written as JSON: {exc}") from None


def render_value(value: Any) -> str | None:
    """How one field value is written into a k=v sign string; None means 'leave it out'."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return canonical_json(value)
    raise ValueError(f"a {type(value).__name__} cannot go into a sign string")


def sorted_kv_string(params: Mapping[str, Any], *, exclude: Collection[str] = ()) -> str:
    """Non-empty `k=v` pairs sorted by key (ordinal) and joined with '&'."""
    parts = []
    for key in sorted(params):
        if key in exclude:
            continue
        rendered = render_value(params[key])
        if rendered is None or rendered == "":
            continue
        parts.append(f"{key}={rendered}")
    return "&".join(parts)


def sha256_hex(data: str | bytes) -> str:
    return hashlib.sha256(_utf8(data)).hexdigest()


def hmac_sha256(key: str | bytes, message: str | bytes) -> bytes:
    """Generic HMAC-SHA256 (raw 32 bytes); encode with .hex() or Base64 as a platform wants."""
    return hmac.new(_utf8(key), _utf8(message), hashlib.sha256).digest()


# --------------------------------------------------------------------------------------------
# nhsa.md §1.1: "TIF" PaaS gateway headers
# --------------------------------------------------------------------------------------------

TIF_PAASID: Final = "x-tif-paasid"
TIF_TIMESTAMP: Final = "x-tif-timestamp"
TIF_NONCE: Final = "x-tif-nonce"
TIF_SIGNATURE: Final = "x-tif-signature"


def tif_string_to_sign(timestamp: str, token: str, nonce: str) -> str:
    """timestamp + token + nonce + timestamp (the timestamp really appears twice)."""
    return f"{timestamp}{token}{nonce}{timestamp}"


def tif_signature(timestamp: str, token: str, nonce: str) -> str:
    """Lowercase hex SHA-256 of the string to sign; the body is not covered."""
    return sha256_hex(tif_string_to_sign(timestamp, token, nonce))


def tif_headers(paas_id: str, token: str, *, timestamp: int, nonce: str) -> dict[str, str]:
    _require("TIF paas id", paas_id)
    _require("TIF token", token)
    _require("TIF nonce", nonce)
    ts = str(int(timestamp))
    return {
        TIF_PAASID: paas_id,
        TIF_TIMESTAMP: ts,
        TIF_NONCE: nonce,
        TIF_SIGNATURE: tif_signature(ts, token, nonce),
    }


def _guid() -> str:
    # [OH] sends a .NET Guid, i.e. the 36-character dashed form.
    return str(uuid.uuid4())


@dataclass(frozen=True)
class TifSigner:
    paas_id: str
    token: str = field(repr=False)
    clock: Clock = time.time
    nonce: Callable[[], str] = _guid

    def __post_init__(self) -> None:
        _require("TIF paas id", self.paas_id)
        _require("TIF token", self.token)

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, str], bytes]:
        extra = tif_headers(
            self.paas_id, self.token, timestamp=int(self.clock()), nonce=self.nonce()
        )
        return _merge_headers(headers, extra), body


# --------------------------------------------------------------------------------------------
# nhsa.md §1.2: Aliyun CSB gateway headers
# --------------------------------------------------------------------------------------------

CSB_API_NAME: Final = "_api_name"
CSB_API_VERSION: Final = "_api_version"
CSB_ACCESS_KEY: Final = "_api_access_key"
CSB_TIMESTAMP: Final = "_api_timestamp"
CSB_SIGNATURE: Final = "_api_signature"

HmacDigest = Literal["sha1", "sha256"]


def csb_string_to_sign(params: Mapping[str, str | Sequence[str]]) -> str:
    """`k=v` for every value (repeated keys kept in order), keys sorted, joined with '&'.

    Values are the raw, not URL-encoded, ones; empty values are kept, as the CSB SDK does.
    """
    parts: list[str] = []
    for key in sorted(params):
        values = params[key]
        for value in [values] if isinstance(values, str) else values:
            parts.append(f"{key}={value}")
    return "&".join(parts)


def csb_signature(
    secret_key: str, params: Mapping[str, str | Sequence[str]], *, digest: HmacDigest = "sha1"
) -> str:
    """Base64(HMAC(secret, string to sign)); the spec says HMAC-SHA1."""
    _require("CSB secret key", secret_key)
    mac = hmac.new(_utf8(secret_key), _utf8(csb_string_to_sign(params)), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def csb_headers(
    *,
    api_name: str,
    api_version: str,
    access_key: str,
    secret_key: str,
    timestamp_ms: int,
    form: Mapping[str, Sequence[str]] | None = None,
    digest: HmacDigest = "sha1",
) -> dict[str, str]:
    """The five CSB headers; form parameters (urlencoded bodies only) join the signature."""
    for what, value in (("api name", api_name), ("api version", api_version)):
        _require(f"CSB {what}", value)
    _require("CSB access key", access_key)
    headers = {
        CSB_API_NAME: api_name,
        CSB_API_VERSION: api_version,
        CSB_ACCESS_KEY: access_key,
        CSB_TIMESTAMP: str(int(timestamp_ms)),
    }
    params: dict[str, str | Sequence[str]] = dict(form or {})
    clash = sorted(set(params) & set(headers))
    if clash:
        raise ValueError(f"form parameters may not use the reserved CSB names {clash}")
    params.update(headers)
    headers[CSB_SIGNATURE] = csb_signature(secret_key, params, digest=digest)
    return headers


def _form_params(headers: Mapping[str, str], body: bytes) -> dict[str, list[str]] | None:
    content_type = (_header(headers, "Content-Type") or "").lower()
    if not content_type.startswith("application/x-www-form-urlencoded") or not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("form body is not UTF-8") from None
    form: dict[str, list[str]] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        form.setdefault(key, []).append(value)
    return form


@dataclass(frozen=True)
class CsbSigner:
    """api_name is either fixed or derived from the request path (CSB names one service per
    API, and FSI deployments expose one path per transaction)."""

    api_name: str | Callable[[str], str]
    api_version: str
    access_key: str
    secret_key: str = field(repr=False)
    digest: HmacDigest = "sha1"
    clock: Clock = time.time

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, str], bytes]:
        name = self.api_name if isinstance(self.api_name, str) else self.api_name(path)
        extra = csb_headers(
            api_name=name,
            api_version=self.api_version,
            access_key=self.access_key,
            secret_key=self.secret_key,
            timestamp_ms=int(self.clock() * 1000),
            form=_form_params(headers, body),
            digest=self.digest,
        )
        return _merge_headers(headers, extra), body


# --------------------------------------------------------------------------------------------
# mobilepay_evoucher_healthcard.md §6.2: regional (Tencent health-card) SHA-256 signature
# --------------------------------------------------------------------------------------------


def regional_sha256_signature(
    params: Mapping[str, Any], app_secret: str, *, exclude: Collection[str] = ("sign",)
) -> str:
    """Base64(SHA-256(non-empty k=v sorted and joined with '&', then app secret appended)).

    The secret is appended directly, with no separator. Which field carries the result (and
    so is excluded) is not in the spec; the public client calls it `sign`.
    """
    _require("app secret", app_secret)
    digest = hashlib.sha256(_utf8(sorted_kv_string(params, exclude=exclude) + app_secret))
    return base64.b64encode(digest.digest()).decode("ascii")


# --------------------------------------------------------------------------------------------
# mobilepay_evoucher_healthcard.md §2: mobile-pay envelope (SM4 encData + SM2 signData)
# --------------------------------------------------------------------------------------------

MOBILEPAY_UNSIGNED: Final = frozenset({"signData", "encData", "extra"})
"""Fields left out of the sign string (spec §2.2 step 1)."""


def mobilepay_sign_string(fields: Mapping[str, Any], app_secret: str) -> str:
    """Spec §2.2 steps 1-4: drop signData/encData/extra and empty values, sort keys (ASCII),
    join `k=v` with '&' (objects as canonical JSON), append `&key=<appSecret>`."""
    _require("mobile-pay appSecret", app_secret)
    return f"{sorted_kv_string(fields, exclude=MOBILEPAY_UNSIGNED)}&key={app_secret}"


def mobilepay_data_key(app_id: str, app_secret: str) -> bytes:
    """Spec §2.3: K = first 16 characters of upper-case hex of SM4-ECB(appId[:16], appSecret),
    used as 16 ASCII bytes. PKCS#7 padding only matters for secrets under 16 bytes."""
    _require("mobile-pay appId", app_id)
    _require("mobile-pay appSecret", app_secret)
    id_bytes = _utf8(app_id)
    if len(id_bytes) < 16:
        raise ValueError("mobile-pay appId must be at least 16 bytes: its first 16 are a key")
    cipher = sm4_encrypt_ecb(id_bytes[:16], _utf8(app_secret))
    return cipher.hex().upper()[:16].encode("ascii")


def mobilepay_encrypt_data(data: Any, app_id: str, app_secret: str) -> str:
    """encData = upper-case hex of SM4-ECB/PKCS#7(K, canonical JSON of data)."""
    key = mobilepay_data_key(app_id, app_secret)
    return sm4_encrypt_ecb(key, _utf8(canonical_json(data))).hex().upper()


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
        _utf8(sign_string), uid=config.uid, fmt=config.signature_format
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
    signature = _b64decode("signData", sign_data)
    config.platform_public_key.verify(
        _utf8(mobilepay_sign_string(fields, config.app_secret)),
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
        fields = _json_object(body, "mobile-pay request body")
        sealed = seal_mobilepay_request(fields, self.config, timestamp_ms=int(self.clock() * 1000))
        return dict(headers), _dump_body(sealed)


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
        _require("e-health-card app_id", self.app_id)
        _require("e-health-card version", self.version)
        healthcard_sm4_key(self.app_secret, self.options)


def healthcard_sm4_key(app_secret: str, options: HealthCardOptions) -> bytes:
    _require("e-health-card app secret", app_secret)
    if options.key_encoding == "hex":
        key = parse_hex("e-health-card app secret", app_secret)
    else:
        key = _utf8(app_secret)
    if len(key) != 16:
        raise ValueError(
            f"e-health-card app secret must give a 16-byte SM4 key ({options.key_encoding}), "
            f"got {len(key)} bytes"
        )
    return key


def healthcard_encrypt_biz(plain: str, app_secret: str, options: HealthCardOptions) -> str:
    cipher = sm4_encrypt_ecb(healthcard_sm4_key(app_secret, options), _utf8(plain))
    if options.cipher_encoding == "hex":
        return cipher.hex().upper()
    return base64.b64encode(cipher).decode("ascii")


def healthcard_decrypt_biz(cipher_text: str, app_secret: str, options: HealthCardOptions) -> str:
    if options.cipher_encoding == "hex":
        cipher = parse_hex("biz_content", cipher_text)
    else:
        cipher = _b64decode("biz_content", cipher_text)
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
    _require("e-health-card app secret", app_secret)
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
    digest = sm3_hex(_utf8(healthcard_digest_string(fields, app_secret, options)))
    return digest.upper() if options.digest_uppercase else digest


def seal_healthcard_request(
    method: str, biz: Any, config: HealthCardConfig, *, timestamp_ms: int
) -> dict[str, str]:
    """The request of spec §4: common fields, SM4 biz_content and the SM3 digest."""
    _require("e-health-card method", method)
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
        fields = _json_object(body, "e-health-card request body")
        if "method" not in fields or "biz_content" not in fields:
            raise ValueError("e-health-card request body needs 'method' and 'biz_content'")
        sealed = seal_healthcard_request(
            str(fields["method"]),
            fields["biz_content"],
            self.config,
            timestamp_ms=int(self.clock() * 1000),
        )
        return dict(headers), _dump_body(sealed)
