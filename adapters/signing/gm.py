"""Chinese commercial cryptography (GM/T) primitives used by the outbound adapters.

* SM3 (GM/T 0004-2012) through OpenSSL (`hashlib.new("sm3")`); a pure-Python fallback from
  gmalg is used, with a warning, only when the OpenSSL build lacks SM3.
* SM4 (GM/T 0002-2012) through `cryptography` (OpenSSL), ECB and CBC, PKCS#7 padding.
* SM2 signatures with SM3 (GM/T 0003.2-2012 / GB/T 32918.2-2016) through gmalg's SM2 core:
  `cryptography` cannot load SM2 keys, and gmalg is pure Python, so it also installs into the
  slim image without a compiler. The SM3 hashing inside SM2 is routed to OpenSSL.

Keys travel as hex because that is how the platforms hand them out. Signatures come in two
encodings (DER SEQUENCE{r, s} as Java/BouncyCastle emit, or raw r||s of 64 bytes), so both are
supported and the caller names the one its platform uses.

Malformed input (bad hex, wrong lengths, points off the curve, bad padding) raises ValueError;
a signature that does not verify raises InvalidSignatureError, also a ValueError.

Longer than the hub's 400 lines on purpose: the three primitives are the standard's one suite,
each short, checked together against the standards' test vectors, and every signing scheme
imports them as one module.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmalg import sm3 as gmalg_sm3
from gmalg.ellipticcurve import ECDLP
from gmalg.sm2 import SM2Core

from hub.base.errors import PermanentError

log = logging.getLogger(__name__)

SM2_DEFAULT_UID: Final = b"1234567812345678"
"""User id used when a platform names none (GM/T 0009-2012 default)."""

SM4_KEY_SIZE: Final = 16
SM4_BLOCK_SIZE: Final = 16

SignatureFormat = Literal["der", "raw"]


class InvalidSignatureError(PermanentError, ValueError):
    """A well-formed signature that does not match the message and public key."""


# --------------------------------------------------------------------------------------------
# SM3
# --------------------------------------------------------------------------------------------


class _HashObject(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _PureSm3Hash:
    """gmalg's SM3 behind the hashlib interface; about a thousand times slower than OpenSSL."""

    def __init__(self) -> None:
        self._impl: Any = gmalg_sm3.SM3()

    def update(self, data: bytes, /) -> None:
        self._impl.update(bytes(data))

    def digest(self) -> bytes:
        value: bytes = self._impl.value()
        return value


def _openssl_has_sm3() -> bool:
    try:
        hashlib.new("sm3")
    except ValueError:
        return False
    return True


def _new_openssl_sm3() -> _HashObject:
    return hashlib.new("sm3")


SM3_BACKEND: Final[Literal["openssl", "pure-python"]] = (
    "openssl" if _openssl_has_sm3() else "pure-python"
)
_new_sm3: Callable[[], _HashObject] = _new_openssl_sm3 if SM3_BACKEND == "openssl" else _PureSm3Hash
if SM3_BACKEND != "openssl":
    # Correct but slow: a 3 KB digest takes milliseconds instead of microseconds.
    log.warning("OpenSSL has no SM3 here; using the pure-Python SM3, which is much slower")


def sm3(data: bytes) -> bytes:
    """SM3 digest (32 bytes) of data."""
    h = _new_sm3()
    h.update(data)
    return h.digest()


def sm3_hex(data: bytes) -> str:
    """SM3 digest as lowercase hex."""
    return sm3(data).hex()


def _pure_sm3(data: bytes) -> bytes:
    """The fallback implementation, kept callable so tests can check it on any machine."""
    h = _PureSm3Hash()
    h.update(data)
    return h.digest()


# --------------------------------------------------------------------------------------------
# SM4
# --------------------------------------------------------------------------------------------


def _check_sm4_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray):
        raise ValueError("SM4 key must be bytes")
    if len(key) != SM4_KEY_SIZE:
        raise ValueError(f"SM4 key must be {SM4_KEY_SIZE} bytes, got {len(key)}")


def _check_iv(iv: bytes) -> None:
    if not isinstance(iv, bytes | bytearray) or len(iv) != SM4_BLOCK_SIZE:
        size = len(iv) if isinstance(iv, bytes | bytearray) else "non-bytes"
        raise ValueError(f"SM4-CBC IV must be {SM4_BLOCK_SIZE} bytes, got {size}")


def _pkcs7_pad(data: bytes) -> bytes:
    padder = padding.PKCS7(SM4_BLOCK_SIZE * 8).padder()
    return padder.update(data) + padder.finalize()


def _pkcs7_unpad(data: bytes) -> bytes:
    unpadder = padding.PKCS7(SM4_BLOCK_SIZE * 8).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        # Almost always a wrong key or a corrupted/truncated cipher text, not a padding bug.
        raise ValueError("SM4: bad PKCS#7 padding (wrong key or corrupted data)") from None


def _check_block_multiple(what: str, data: bytes) -> None:
    if len(data) % SM4_BLOCK_SIZE:
        raise ValueError(
            f"SM4 {what} length must be a multiple of {SM4_BLOCK_SIZE} bytes, got {len(data)}"
        )


def _sm4(key: bytes, mode: modes.ECB | modes.CBC, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.SM4(bytes(key)), mode)
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def sm4_encrypt_ecb(key: bytes, plaintext: bytes, *, pad: bool = True) -> bytes:
    """SM4-ECB encryption. With pad=False the plaintext must be whole blocks."""
    _check_sm4_key(key)
    data = _pkcs7_pad(plaintext) if pad else plaintext
    _check_block_multiple("plaintext", data)
    return _sm4(key, modes.ECB(), data, encrypt=True)


def sm4_decrypt_ecb(key: bytes, ciphertext: bytes, *, pad: bool = True) -> bytes:
    """SM4-ECB decryption; strips PKCS#7 padding unless pad=False."""
    _check_sm4_key(key)
    _check_block_multiple("cipher text", ciphertext)
    plain = _sm4(key, modes.ECB(), ciphertext, encrypt=False)
    return _pkcs7_unpad(plain) if pad else plain


def sm4_encrypt_cbc(key: bytes, iv: bytes, plaintext: bytes, *, pad: bool = True) -> bytes:
    """SM4-CBC encryption. With pad=False the plaintext must be whole blocks."""
    _check_sm4_key(key)
    _check_iv(iv)
    data = _pkcs7_pad(plaintext) if pad else plaintext
    _check_block_multiple("plaintext", data)
    return _sm4(key, modes.CBC(bytes(iv)), data, encrypt=True)


def sm4_decrypt_cbc(key: bytes, iv: bytes, ciphertext: bytes, *, pad: bool = True) -> bytes:
    """SM4-CBC decryption; strips PKCS#7 padding unless pad=False."""
    _check_sm4_key(key)
    _check_iv(iv)
    _check_block_multiple("cipher text", ciphertext)
    plain = _sm4(key, modes.CBC(bytes(iv)), ciphertext, encrypt=False)
    return _pkcs7_unpad(plain) if pad else plain


# --------------------------------------------------------------------------------------------
# SM2
# --------------------------------------------------------------------------------------------

Point = tuple[int, int]
RandomBits = Callable[[int], int]


@dataclass(frozen=True)
class Sm2Curve:
    """Curve parameters; the recommended curve is the only one the platforms use.

    Other curves exist so the known-answer example of GM/T 0003.2 (which uses a test curve)
    can run through the same code path as production signing.
    """

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    ecdlp: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ecdlp", ECDLP(self.p, self.a, self.b, (self.gx, self.gy), self.n))

    @property
    def size(self) -> int:
        """Bytes in one coordinate or scalar."""
        return (self.p.bit_length() + 7) // 8


SM2_P256V1: Final = Sm2Curve(
    name="sm2p256v1",
    p=0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_00000000_FFFFFFFF_FFFFFFFF,
    a=0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_00000000_FFFFFFFF_FFFFFFFC,
    b=0x28E9FA9E_9D9F5E34_4D5A9E4B_CF6509A7_F39789F5_15AB8F92_DDBCBD41_4D940E93,
    gx=0x32C4AE2C_1F198119_5F990446_6A39C994_8FE30BBF_F2660BE1_715A4589_334C74C7,
    gy=0xBC3736A2_F4F6779C_59BDCEE3_6B692153_D0A9877C_C62A4740_02DF32E5_2139F0A0,
    n=0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_7203DF6B_21C6052B_53BBF409_39D54123,
)
"""The recommended curve of GB/T 32918.5-2017 (GM/T 0003.5-2012)."""


class _Sm3ForGmalg:
    """The hash interface gmalg's SM2 core calls (reset/update/value), backed by OpenSSL SM3.

    A fresh instance per operation: gmalg keeps one mutable hash object per core, so sharing
    a core between threads would mix digests.
    """

    @classmethod
    def hash_length(cls) -> int:
        return 32

    @classmethod
    def max_msg_length(cls) -> int:
        return (1 << 61) - 1

    def __init__(self) -> None:
        self._h = _new_sm3()

    def reset(self) -> None:
        self._h = _new_sm3()

    def update(self, data: bytes) -> None:
        self._h.update(bytes(data))

    def value(self) -> bytes:
        return self._h.digest()


def _core(curve: Sm2Curve, rnd_fn: RandomBits | None = None) -> Any:
    # Cheap to build (no precomputed tables), and a private one per call is thread-safe.
    return SM2Core(curve.ecdlp, _Sm3ForGmalg(), rnd_fn)


def parse_hex(what: str, value: str | bytes) -> bytes:
    """Hex text to bytes; whitespace between byte pairs is allowed (keys copied from PDFs)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", errors="replace")
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a hex string")
    text = value.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        # Never echo the value: it may be a private key.
        raise ValueError(f"{what} is not valid hex") from None


def _check_uid(uid: bytes) -> bytes:
    if not isinstance(uid, bytes | bytearray):
        raise ValueError("SM2 user id must be bytes")
    if len(uid) * 8 >= 1 << 16:  # ENTL is a 16-bit bit count
        raise ValueError("SM2 user id must be shorter than 8192 bytes")
    return bytes(uid)


@dataclass(frozen=True)
class Sm2PublicKey:
    """A validated SM2 public key (on the curve, of order n)."""

    point: Point
    curve: Sm2Curve = SM2_P256V1

    def __post_init__(self) -> None:
        x, y = self.point
        if not (0 <= x < self.curve.p and 0 <= y < self.curve.p):
            raise ValueError("SM2 public key coordinates are out of range")
        if not _core(self.curve).verify_pk(self.point):
            raise ValueError("SM2 public key is not a valid point on the curve")

    @classmethod
    def from_hex(cls, value: str, curve: Sm2Curve = SM2_P256V1) -> Sm2PublicKey:
        """Accepts x||y (128 hex), 04||x||y (130 hex) or compressed 02/03||x (66 hex)."""
        return cls.from_bytes(parse_hex("SM2 public key", value), curve)

    @classmethod
    def from_bytes(cls, raw: bytes, curve: Sm2Curve = SM2_P256V1) -> Sm2PublicKey:
        size = curve.size
        if len(raw) == 2 * size:
            raw = b"\x04" + raw
        if len(raw) == 2 * size + 1 and raw[0] == 0x04:
            x = int.from_bytes(raw[1 : 1 + size], "big")
            y = int.from_bytes(raw[1 + size :], "big")
            return cls((x, y), curve)
        if len(raw) == size + 1 and raw[0] in (0x02, 0x03):
            return cls(_decompress(curve, raw[0], int.from_bytes(raw[1:], "big")), curve)
        raise ValueError(
            f"SM2 public key must be {2 * size} or {2 * size + 1} bytes (uncompressed) or "
            f"{size + 1} bytes (compressed), got {len(raw)}"
        )

    def to_bytes(self) -> bytes:
        """Uncompressed form 04||x||y."""
        size = self.curve.size
        x, y = self.point
        return b"\x04" + x.to_bytes(size, "big") + y.to_bytes(size, "big")

    def to_hex(self) -> str:
        return self.to_bytes().hex()

    def z_digest(self, uid: bytes = SM2_DEFAULT_UID) -> bytes:
        """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), the signer's identity hash."""
        value: bytes = _core(self.curve).entity_info(_check_uid(uid), self.point)
        return value

    def verify(
        self,
        message: bytes,
        signature: bytes,
        *,
        uid: bytes = SM2_DEFAULT_UID,
        fmt: SignatureFormat = "der",
    ) -> None:
        """Raise InvalidSignatureError unless signature is SM2-with-SM3 of message by this key."""
        r, s = decode_signature(signature, fmt, self.curve)
        if not _core(self.curve).verify(bytes(message), r, s, _check_uid(uid), self.point):
            raise InvalidSignatureError("SM2 signature does not match the message and key")

    def is_valid_signature(
        self,
        message: bytes,
        signature: bytes,
        *,
        uid: bytes = SM2_DEFAULT_UID,
        fmt: SignatureFormat = "der",
    ) -> bool:
        """Boolean form of verify(); malformed signatures still raise ValueError."""
        try:
            self.verify(message, signature, uid=uid, fmt=fmt)
        except InvalidSignatureError:
            return False
        return True


def _decompress(curve: Sm2Curve, prefix: int, x: int) -> Point:
    if not 0 <= x < curve.p:
        raise ValueError("SM2 public key coordinates are out of range")
    y = curve.ecdlp.ec.get_y(x)
    if y is None:
        raise ValueError("SM2 public key is not a valid point on the curve")
    if (y & 1) != (prefix & 1):
        y = curve.ecdlp.fp.neg(y)
    return (x, int(y))


class Sm2PrivateKey:
    """An SM2 private key with its public key; signs with SM3 as the standard prescribes."""

    __slots__ = ("_d", "_rnd_fn", "curve", "public_key")

    def __init__(
        self, d: int, curve: Sm2Curve = SM2_P256V1, *, rnd_fn: RandomBits | None = None
    ) -> None:
        """rnd_fn(bits) supplies the per-signature k; leave it None (CSPRNG) outside
        known-answer tests, since a predictable k reveals the private key."""
        if not 1 <= d <= curve.n - 2:
            raise ValueError("SM2 private key is out of range [1, n-2]")
        self._d = d
        self._rnd_fn = rnd_fn
        self.curve = curve
        x, y = curve.ecdlp.kG(d)
        self.public_key = Sm2PublicKey((x, y), curve)

    def __repr__(self) -> str:
        return f"Sm2PrivateKey(curve={self.curve.name}, public_key={self.public_key.to_hex()})"

    @classmethod
    def from_hex(
        cls, value: str, curve: Sm2Curve = SM2_P256V1, *, rnd_fn: RandomBits | None = None
    ) -> Sm2PrivateKey:
        """32-byte scalar as hex; a 33-byte form with a leading 00 (Java BigInteger) is accepted."""
        raw = parse_hex("SM2 private key", value)
        size = curve.size
        if len(raw) == size + 1 and raw[0] == 0:
            raw = raw[1:]
        if len(raw) != size:
            raise ValueError(
                f"SM2 private key must be {size} bytes ({2 * size} hex), got {len(raw)}"
            )
        return cls(int.from_bytes(raw, "big"), curve, rnd_fn=rnd_fn)

    @classmethod
    def generate(cls, curve: Sm2Curve = SM2_P256V1) -> Sm2PrivateKey:
        return cls(secrets.randbelow(curve.n - 2) + 1, curve)

    def to_hex(self) -> str:
        return self._d.to_bytes(self.curve.size, "big").hex()

    def sign(
        self, message: bytes, *, uid: bytes = SM2_DEFAULT_UID, fmt: SignatureFormat = "der"
    ) -> bytes:
        """SM2-with-SM3 signature of message (the Z-prefixed digest is computed here)."""
        core = _core(self.curve, self._rnd_fn)
        r, s = core.sign(bytes(message), self._d, _check_uid(uid), self.public_key.point)
        return encode_signature(int(r), int(s), fmt, self.curve)


def encode_signature(r: int, s: int, fmt: SignatureFormat, curve: Sm2Curve = SM2_P256V1) -> bytes:
    """r, s to DER SEQUENCE{INTEGER r, INTEGER s} or to raw r||s (fixed width)."""
    if fmt == "der":
        return encode_dss_signature(r, s)
    if fmt == "raw":
        return r.to_bytes(curve.size, "big") + s.to_bytes(curve.size, "big")
    raise ValueError(f"unknown SM2 signature format {fmt!r}; use 'der' or 'raw'")


def decode_signature(
    signature: bytes, fmt: SignatureFormat, curve: Sm2Curve = SM2_P256V1
) -> tuple[int, int]:
    """Inverse of encode_signature; rejects anything malformed with ValueError."""
    if not isinstance(signature, bytes | bytearray):
        raise ValueError("SM2 signature must be bytes")
    if fmt == "der":
        try:
            r, s = decode_dss_signature(bytes(signature))
        except ValueError:
            raise ValueError("SM2 signature is not a valid DER SEQUENCE{r, s}") from None
    elif fmt == "raw":
        if len(signature) != 2 * curve.size:
            raise ValueError(
                f"raw SM2 signature must be {2 * curve.size} bytes (r||s), got {len(signature)}"
            )
        r = int.from_bytes(signature[: curve.size], "big")
        s = int.from_bytes(signature[curve.size :], "big")
    else:
        raise ValueError(f"unknown SM2 signature format {fmt!r}; use 'der' or 'raw'")
    if not (1 <= r < curve.n and 1 <= s < curve.n):
        raise ValueError("SM2 signature r or s is out of range [1, n-1]")
    return r, s


def der_to_raw(signature: bytes, curve: Sm2Curve = SM2_P256V1) -> bytes:
    return encode_signature(*decode_signature(signature, "der", curve), "raw", curve)


def raw_to_der(signature: bytes, curve: Sm2Curve = SM2_P256V1) -> bytes:
    return encode_signature(*decode_signature(signature, "raw", curve), "der", curve)


def sm2_sign(
    private_key_hex: str,
    message: bytes,
    *,
    uid: bytes = SM2_DEFAULT_UID,
    fmt: SignatureFormat = "der",
) -> bytes:
    """One-shot signing; parse the key once with Sm2PrivateKey when signing repeatedly."""
    return Sm2PrivateKey.from_hex(private_key_hex).sign(message, uid=uid, fmt=fmt)


def sm2_verify(
    public_key_hex: str,
    message: bytes,
    signature: bytes,
    *,
    uid: bytes = SM2_DEFAULT_UID,
    fmt: SignatureFormat = "der",
) -> None:
    """One-shot verification; raises InvalidSignatureError (a ValueError) on mismatch."""
    Sm2PublicKey.from_hex(public_key_hex).verify(message, signature, uid=uid, fmt=fmt)
