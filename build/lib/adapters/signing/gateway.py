"""Gateway signatures of the insurance platforms: the "TIF" PaaS headers (nhsa.md §1.1), the
Aliyun CSB headers (§1.2) and the regional SHA-256 request signature (mobilepay_evoucher_
healthcard.md §6.2). Whatever the spec marks unverified is a parameter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

from adapters.signing.common import (
    Clock,
    header_value,
    merge_headers,
    require,
    sha256_hex,
    sorted_kv_string,
    utf8,
)

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
    require("TIF paas id", paas_id)
    require("TIF token", token)
    require("TIF nonce", nonce)
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
        require("TIF paas id", self.paas_id)
        require("TIF token", self.token)

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, str], bytes]:
        extra = tif_headers(
            self.paas_id, self.token, timestamp=int(self.clock()), nonce=self.nonce()
        )
        return merge_headers(headers, extra), body


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
    require("CSB secret key", secret_key)
    mac = hmac.new(utf8(secret_key), utf8(csb_string_to_sign(params)), digest)
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
        require(f"CSB {what}", value)
    require("CSB access key", access_key)
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
    content_type = (header_value(headers, "Content-Type") or "").lower()
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
        return merge_headers(headers, extra), body


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
    require("app secret", app_secret)
    digest = hashlib.sha256(utf8(sorted_kv_string(params, exclude=exclude) + app_secret))
    return base64.b64encode(digest.digest()).decode("ascii")
