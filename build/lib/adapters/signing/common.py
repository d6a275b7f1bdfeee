"""What the signers share: the `Signer` protocol a transport calls, canonical JSON and
sorted key=value strings, digests and small checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Any, Protocol

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


def utf8(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def require(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")


def merge_headers(headers: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Copy headers and set extra, replacing any header of the same name in another case."""
    replaced = {name.lower() for name in extra}
    merged = {name: value for name, value in headers.items() if name.lower() not in replaced}
    merged.update(extra)
    return merged


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise ValueError(f"{what} is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


def dump_body(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def b64decode_field(what: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"{what} is not valid Base64") from None


def drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [drop_nulls(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Compact JSON, keys sorted at every level, null members left out, non-ASCII kept as is.

    Matches what the Java/C# SDKs produce (fastjson with sorted fields, Newtonsoft in the
    C# MedicareUtil), which both omit nulls; a mismatch here breaks every signature.
    """
    try:
        return json.dumps(
            drop_nulls(value),
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
    return hashlib.sha256(utf8(data)).hexdigest()


def hmac_sha256(key: str | bytes, message: str | bytes) -> bytes:
    """Generic HMAC-SHA256 (raw 32 bytes); encode with .hex() or Base64 as a platform wants."""
    return hmac.new(utf8(key), utf8(message), hashlib.sha256).digest()
