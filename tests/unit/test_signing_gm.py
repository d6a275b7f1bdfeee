"""GM/T primitives in adapters.signing.gm checked against the standards' own test vectors and
against OpenSSL's independent SM2 implementation (the `openssl` command, when present)."""

import hashlib
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from adapters.signing import gm
from adapters.signing.gm import (
    SM2_DEFAULT_UID,
    SM2_P256V1,
    InvalidSignatureError,
    Sm2Curve,
    Sm2PrivateKey,
    Sm2PublicKey,
    der_to_raw,
    raw_to_der,
    sm2_sign,
    sm2_verify,
    sm3,
    sm3_hex,
    sm4_decrypt_cbc,
    sm4_decrypt_ecb,
    sm4_encrypt_cbc,
    sm4_encrypt_ecb,
)

# --------------------------------------------------------------------------------------------
# OpenSSL command-line helpers (a second, independent SM2 implementation)
# --------------------------------------------------------------------------------------------

# DER SubjectPublicKeyInfo header for id-ecPublicKey on curve sm2p256v1 (1.2.156.10197.1.301),
# followed by the 65-byte uncompressed point.
SPKI_SM2_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


def _openssl_has_sm2() -> bool:
    exe = shutil.which("openssl")
    if exe is None:
        return False
    listed = subprocess.run(
        [exe, "list", "-public-key-algorithms"], capture_output=True, text=True, check=False
    )
    return listed.returncode == 0 and "SM2" in listed.stdout


needs_openssl_sm2 = pytest.mark.skipif(
    not _openssl_has_sm2(), reason="the openssl command with SM2 support is not installed"
)


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)


def openssl_verify(
    public_key: Sm2PublicKey, message: bytes, der_signature: bytes, uid: bytes, folder: Path
) -> bool:
    """True when OpenSSL accepts the SM2-with-SM3 DER signature."""
    (folder / "pub.der").write_bytes(SPKI_SM2_PREFIX + public_key.to_bytes())
    (folder / "msg").write_bytes(message)
    (folder / "sig").write_bytes(der_signature)
    result = _openssl(
        "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", folder / "pub.der",
        "-rawin", "-digest", "sm3", "-pkeyopt", f"distid:{uid.decode('ascii')}",
        "-in", folder / "msg", "-sigfile", folder / "sig",
    )  # fmt: skip
    return result.returncode == 0


def openssl_sign(message: bytes, uid: bytes, folder: Path) -> tuple[Sm2PublicKey, bytes]:
    """A fresh OpenSSL SM2 key, its public key and its DER signature of message."""
    key = folder / "key.pem"
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", key).returncode == 0
    spki = _openssl("pkey", "-in", key, "-pubout", "-outform", "DER").stdout
    (folder / "msg").write_bytes(message)
    signed = _openssl(
        "pkeyutl", "-sign", "-inkey", key, "-rawin", "-digest", "sm3",
        "-pkeyopt", f"distid:{uid.decode('ascii')}", "-in", folder / "msg",
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    return Sm2PublicKey.from_bytes(spki[-65:]), signed.stdout


# --------------------------------------------------------------------------------------------
# SM3
# --------------------------------------------------------------------------------------------

SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD_16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm3_standard_vectors() -> None:
    """GM/T 0004-2012 (GB/T 32905-2016) Appendix A, example 1 ("abc", 24 bits) and
    example 2 ("abcd" repeated 16 times, 512 bits)."""
    assert sm3_hex(b"abc") == SM3_ABC
    assert sm3(b"abcd" * 16).hex() == SM3_ABCD_16


def test_sm3_pure_python_fallback_gives_the_same_vectors() -> None:
    """Same GM/T 0004-2012 Appendix A vectors through the fallback used when OpenSSL lacks SM3."""
    assert gm._pure_sm3(b"abc").hex() == SM3_ABC
    assert gm._pure_sm3(b"abcd" * 16).hex() == SM3_ABCD_16
    data = bytes(range(256)) * 12
    assert gm._pure_sm3(data) == sm3(data)


# --------------------------------------------------------------------------------------------
# SM4
# --------------------------------------------------------------------------------------------

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_standard_single_block() -> None:
    """GM/T 0002-2012 (GB/T 32907-2016) Appendix A, example 1: key = plaintext =
    0123456789abcdeffedcba9876543210 gives 681edf34d206965e86b3e94f536e4246."""
    cipher = sm4_encrypt_ecb(SM4_KEY, SM4_KEY, pad=False)
    assert cipher.hex() == "681edf34d206965e86b3e94f536e4246"
    assert sm4_decrypt_ecb(SM4_KEY, cipher, pad=False) == SM4_KEY


def test_sm4_standard_million_iterations() -> None:
    """GM/T 0002-2012 Appendix A, example 2: the same plaintext encrypted 1,000,000 times
    with the same key gives 595298c7c6fd271f0402f804c33d3f66.

    Runs on the OpenSSL SM4 that the sm4_* functions wrap: one cipher context for all blocks
    takes ~0.3 s, whereas a million wrapper calls (a fresh context each) take ~5 s."""
    encryptor = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    block = SM4_KEY
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


SM4_DRAFT_PLAIN = bytes.fromhex("aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb")


def test_sm4_ecb_and_cbc_multi_block_vectors() -> None:
    """draft-ribose-cfrg-sm4-10 Appendix A.2.1.1 (ECB) and A.2.2.1 (CBC, IV 00..0f); both
    also reproduced with `openssl enc -sm4-ecb/-sm4-cbc -nopad`."""
    ecb = sm4_encrypt_ecb(SM4_KEY, SM4_DRAFT_PLAIN, pad=False)
    assert ecb.hex() == "5ec8143de509cff7b5179f8f474b86192f1d305a7fb17df985f81c8482192304"
    iv = bytes(range(16))
    cbc = sm4_encrypt_cbc(SM4_KEY, iv, SM4_DRAFT_PLAIN, pad=False)
    assert cbc.hex() == "78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d"
    assert sm4_decrypt_cbc(SM4_KEY, iv, cbc, pad=False) == SM4_DRAFT_PLAIN


def test_sm4_pkcs7_padding_adds_a_full_block_to_whole_blocks() -> None:
    cipher = sm4_encrypt_ecb(SM4_KEY, SM4_KEY)
    assert len(cipher) == 32
    assert cipher[:16].hex() == "681edf34d206965e86b3e94f536e4246"  # GM/T 0002 example 1
    assert sm4_decrypt_ecb(SM4_KEY, cipher, pad=False)[16:] == bytes([16]) * 16
    for size in (0, 1, 15, 17, 3000):
        plain = bytes(range(256))[: size % 256] * (1 + size // 256)
        assert sm4_decrypt_ecb(SM4_KEY, sm4_encrypt_ecb(SM4_KEY, plain)) == plain
        iv = bytes(16)
        assert sm4_decrypt_cbc(SM4_KEY, iv, sm4_encrypt_cbc(SM4_KEY, iv, plain)) == plain


def test_sm4_bad_input_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="SM4 key must be 16 bytes, got 15"):
        sm4_encrypt_ecb(SM4_KEY[:15], b"x")
    with pytest.raises(ValueError, match="IV must be 16 bytes"):
        sm4_encrypt_cbc(SM4_KEY, bytes(8), b"x")
    with pytest.raises(ValueError, match="multiple of 16"):
        sm4_decrypt_ecb(SM4_KEY, bytes(17))
    with pytest.raises(ValueError, match="multiple of 16"):
        sm4_encrypt_ecb(SM4_KEY, b"abc", pad=False)
    cipher = sm4_encrypt_ecb(SM4_KEY, b'{"a":"hello"}')
    with pytest.raises(ValueError, match="bad PKCS#7 padding"):
        sm4_decrypt_ecb(bytes(16), cipher)  # fixed inputs: the wrong key's output is fixed too


# --------------------------------------------------------------------------------------------
# SM2
# --------------------------------------------------------------------------------------------

# GM/T 0003.2-2012 Appendix A.2 (also GB/T 32918.2-2016 Appendix A): signature example on
# the 256-bit prime test curve (not the recommended curve), ID "ALICE123@YAHOO.COM".
EXAMPLE_CURVE = Sm2Curve(
    name="gmt0003-example-fp256",
    p=0x8542D69E_4C044F18_E8B92435_BF6FF7DE_45728391_5C45517D_722EDB8B_08F1DFC3,
    a=0x787968B4_FA32C3FD_2417842E_73BBFEFF_2F3C848B_6831D7E0_EC65228B_3937E498,
    b=0x63E4C6D3_B23B0C84_9CF84241_484BFE48_F61D59A5_B16BA06E_6E12D1DA_27C5249A,
    gx=0x421DEBD6_1B62EAB6_746434EB_C3CC315E_32220B3B_ADD50BDC_4C4E6C14_7FEDD43D,
    gy=0x0680512B_CBB42C07_D47349D2_153B70C4_E5D7FDFC_BFA36EA1_A85841B9_E46E09A2,
    n=0x8542D69E_4C044F18_E8B92435_BF6FF7DD_29772063_0485628D_5AE74EE7_C32E79B7,
)
EXAMPLE_D = "128B2FA8 BD433C6C 068C8D80 3DFF7979 2A519A55 171B1B65 0C23661D 15897263"
EXAMPLE_PUBLIC = (
    "04 0AE4C779 8AA0F119 471BEE11 825BE462 02BB79E2 A5844495 E97C04FF 4DF2548A"
    "7C0240F8 8F1CD4E1 6352A73C 17B7F16F 07353E53 A176D684 A9FE0C6B B798E857"
)
EXAMPLE_UID = b"ALICE123@YAHOO.COM"
EXAMPLE_MESSAGE = b"message digest"
EXAMPLE_ZA = "F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A"
EXAMPLE_K = 0x6CB28D99_385C175C_94F94E93_4817663F_C176D925_DD72B727_260DBAAE_1FB2F96F
EXAMPLE_R = "40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1"
EXAMPLE_S = "6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7"


def test_sm2_standard_example_known_answer() -> None:
    """GM/T 0003.2-2012 Appendix A.2: from d_A the public key, Z_A, and with the example's
    fixed k the exact (r, s); the example signature then verifies and a tampered one fails."""
    key = Sm2PrivateKey.from_hex(EXAMPLE_D, EXAMPLE_CURVE, rnd_fn=lambda _bits: EXAMPLE_K)
    assert key.public_key.to_hex() == EXAMPLE_PUBLIC.replace(" ", "").lower()
    assert key.public_key.z_digest(EXAMPLE_UID).hex() == EXAMPLE_ZA.lower()
    signature = key.sign(EXAMPLE_MESSAGE, uid=EXAMPLE_UID, fmt="raw")
    assert signature.hex() == (EXAMPLE_R + EXAMPLE_S).lower()

    public = Sm2PublicKey.from_hex(EXAMPLE_PUBLIC, EXAMPLE_CURVE)
    public.verify(EXAMPLE_MESSAGE, signature, uid=EXAMPLE_UID, fmt="raw")
    public.verify(EXAMPLE_MESSAGE, raw_to_der(signature), uid=EXAMPLE_UID, fmt="der")
    with pytest.raises(InvalidSignatureError):
        public.verify(b"message digesT", signature, uid=EXAMPLE_UID, fmt="raw")
    with pytest.raises(InvalidSignatureError):
        public.verify(EXAMPLE_MESSAGE, signature, uid=SM2_DEFAULT_UID, fmt="raw")


def test_sm2_z_digest_on_the_recommended_curve_matches_a_hand_computation() -> None:
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), GM/T 0003.2-2012 §5.5, with the
    recommended parameters of GB/T 32918.5-2017, computed here with hashlib alone."""
    key = Sm2PrivateKey.generate()
    c = SM2_P256V1
    x, y = key.public_key.point
    parts = [c.a, c.b, c.gx, c.gy, x, y]
    z_input = (len(SM2_DEFAULT_UID) * 8).to_bytes(2, "big") + SM2_DEFAULT_UID
    z_input += b"".join(v.to_bytes(32, "big") for v in parts)
    assert key.public_key.z_digest() == hashlib.new("sm3", z_input).digest()


# Made once with OpenSSL 3.0.19 (`openssl genpkey -algorithm SM2`, then `openssl pkeyutl
# -sign -rawin -digest sm3 -pkeyopt distid:<uid>`), on the recommended curve.
OPENSSL_PUBLIC = (
    "045619dd39834da32bdc3cb99fa3ed30f24843032eec8dcd34a933e61e4b63cafc"
    "cf9a060fa6a0f64a1dfde27e81a7f08956e0c7abd189bcdd5c304a5cc4dc6c28"
)
OPENSSL_SIG_DEFAULT_UID = (
    "304502203f73e64d3053851ceb0239eb4a01d3bbc5f1b034d4aa74be533d65056d59d154"
    "022100e20dd238aeb20614ad47a9637861bd70a4fe9b153007d940d5d773f1088ef042"
)
OPENSSL_SIG_ALICE = (
    "3044022056acf6243cd7f5c395ee211187b9b14e23f56c3b75c5b76cafe7ae85f6b57ca8"
    "02203b3b49d495e96a7a8497fff10db23c7ffa2c62c44adc415ddffceb1ce0ca9cd2"
)


def test_sm2_verifies_signatures_made_by_openssl_on_the_recommended_curve() -> None:
    """Fixed signatures of "message digest" made by OpenSSL 3.0.19 (an independent SM2
    implementation) with the default user id 1234567812345678 and with ALICE123@YAHOO.COM."""
    sm2_verify(OPENSSL_PUBLIC, EXAMPLE_MESSAGE, bytes.fromhex(OPENSSL_SIG_DEFAULT_UID))
    public = Sm2PublicKey.from_hex(OPENSSL_PUBLIC)
    alice = bytes.fromhex(OPENSSL_SIG_ALICE)
    public.verify(EXAMPLE_MESSAGE, alice, uid=EXAMPLE_UID)
    public.verify(EXAMPLE_MESSAGE, der_to_raw(alice), uid=EXAMPLE_UID, fmt="raw")
    assert not public.is_valid_signature(EXAMPLE_MESSAGE, alice)  # default uid: no match


@needs_openssl_sm2
def test_sm2_cross_checks_with_openssl_both_ways(tmp_path: Path) -> None:
    """Live second implementation: OpenSSL signs and this module verifies; this module signs
    and OpenSSL verifies, with the default uid and with the standard's ALICE123@YAHOO.COM."""
    message = "门诊结算 2207 消息".encode() * 40
    for uid in (SM2_DEFAULT_UID, EXAMPLE_UID):
        public, signature = openssl_sign(message, uid, tmp_path)
        public.verify(message, signature, uid=uid)
        ours = Sm2PrivateKey.generate()
        assert openssl_verify(ours.public_key, message, ours.sign(message, uid=uid), uid, tmp_path)
        assert not openssl_verify(
            ours.public_key, message + b"!", ours.sign(message, uid=uid), uid, tmp_path
        )


def test_sm2_round_trips_in_both_encodings() -> None:
    key = Sm2PrivateKey.generate()
    again = Sm2PrivateKey.from_hex(key.to_hex())
    assert again.public_key == key.public_key
    message = b'{"infno":"2207"}'
    der = key.sign(message)
    assert der[0] == 0x30
    raw = key.sign(message, fmt="raw")
    assert len(raw) == 64
    public_hex = key.public_key.to_hex()
    sm2_verify(public_hex, message, der)
    sm2_verify(public_hex, message, raw, fmt="raw")
    sm2_verify(public_hex[2:], message, der_to_raw(der), fmt="raw")  # x||y without 04
    assert raw_to_der(der_to_raw(der)) == der
    assert sm2_sign(key.to_hex(), message) != der  # a fresh random k every time
    x, y = key.public_key.point
    compressed = bytes([2 + (y & 1)]) + x.to_bytes(32, "big")
    assert Sm2PublicKey.from_bytes(compressed) == key.public_key


def test_sm2_tampered_signature_is_a_value_error() -> None:
    key = Sm2PrivateKey.generate()
    raw = bytearray(key.sign(b"payload", fmt="raw"))
    raw[10] ^= 0x01
    with pytest.raises(ValueError, match="does not match"):
        key.public_key.verify(b"payload", bytes(raw), fmt="raw")
    with pytest.raises(InvalidSignatureError):
        key.public_key.verify(b"payload!", key.sign(b"payload"))
    other = Sm2PrivateKey.generate()
    with pytest.raises(InvalidSignatureError):
        other.public_key.verify(b"payload", key.sign(b"payload"))


def test_sm2_malformed_signatures_are_value_errors() -> None:
    public = Sm2PrivateKey.generate().public_key
    with pytest.raises(ValueError, match="not a valid DER"):
        public.verify(b"m", b"\x30\x02\x01")
    with pytest.raises(ValueError, match="must be 64 bytes"):
        public.verify(b"m", bytes(63), fmt="raw")
    with pytest.raises(ValueError, match="out of range"):
        public.verify(b"m", bytes(64), fmt="raw")  # r = s = 0
    with pytest.raises(ValueError, match="out of range"):
        public.verify(b"m", SM2_P256V1.n.to_bytes(32, "big") * 2, fmt="raw")
    with pytest.raises(ValueError, match="unknown SM2 signature format"):
        public.verify(b"m", bytes(64), fmt="p1363")  # type: ignore[arg-type]


def test_sm2_bad_keys_are_clear_value_errors() -> None:
    with pytest.raises(ValueError, match="not valid hex"):
        Sm2PrivateKey.from_hex("zz" * 32)
    with pytest.raises(ValueError, match="must be 32 bytes"):
        Sm2PrivateKey.from_hex("11" * 31)
    with pytest.raises(ValueError, match="out of range"):
        Sm2PrivateKey.from_hex("00" * 32)
    with pytest.raises(ValueError, match="out of range"):
        Sm2PrivateKey(SM2_P256V1.n - 1)
    with pytest.raises(ValueError, match="not valid hex"):
        Sm2PublicKey.from_hex("04" + "g1" * 64)
    with pytest.raises(ValueError, match="got 40"):
        Sm2PublicKey.from_hex("04" + "11" * 39)
    x, y = Sm2PrivateKey.generate().public_key.point
    with pytest.raises(ValueError, match="not a valid point"):
        Sm2PublicKey((x, (y + 1) % SM2_P256V1.p))
    with pytest.raises(ValueError, match="out of range"):
        Sm2PublicKey((SM2_P256V1.p, y))
    with pytest.raises(ValueError, match="user id"):
        Sm2PrivateKey.generate().sign(b"m", uid=b"u" * 8192)
    key = Sm2PrivateKey.generate()
    assert key.to_hex() not in repr(key)  # no secret in logs
    assert Sm2PrivateKey.from_hex("00" + key.to_hex()).public_key == key.public_key


def test_sm2_keys_are_safe_to_share_between_threads() -> None:
    """One key, signatures from several threads at once, all verifying: the library's SM2
    core keeps a mutable hash object, so each call must build its own."""
    key = Sm2PrivateKey.generate()
    results: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(3):
            message = f"worker {worker} message {i}".encode() * 50
            signature = key.sign(message)
            with lock:
                results.append((message, signature))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 12
    for message, signature in results:
        key.public_key.verify(message, signature)
