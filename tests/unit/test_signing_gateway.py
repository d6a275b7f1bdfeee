"""Gateway headers and envelopes of adapters.signing.gateway.

Expected values are worked out here from the spec text (shared/specs/nhsa.md §1,
mobilepay_evoucher_healthcard.md §2, §4, §6.2) with hashlib, hmac, base64 and the
`cryptography` SM4 cipher directly, never by calling the code under test.
"""

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from adapters.signing.common import (
    Signer,
    canonical_json,
    hmac_sha256,
    sorted_kv_string,
)
from adapters.signing.gateway import (
    CsbSigner,
    TifSigner,
    csb_headers,
    regional_sha256_signature,
    tif_headers,
)
from adapters.signing.gm import InvalidSignatureError, Sm2PrivateKey
from adapters.signing.healthcard import (
    HealthCardConfig,
    HealthCardOptions,
    HealthCardSigner,
    healthcard_digest_string,
    open_healthcard_response,
    seal_healthcard_request,
)
from adapters.signing.mobilepay import (
    MobilePayConfig,
    MobilePaySigner,
    mobilepay_data_key,
    mobilepay_sign_string,
    open_mobilepay_response,
    seal_mobilepay_request,
)
from tests.unit.test_signing_gm import needs_openssl_sm2, openssl_verify

NOW = 1_764_150_000.123  # 2025-11-26 09:40:00.123 UTC


def sm4_ecb(key: bytes, plain: bytes) -> bytes:
    """Reference SM4-ECB/PKCS#7 built straight on `cryptography`."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


# --------------------------------------------------------------------------------------------
# Generic helpers
# --------------------------------------------------------------------------------------------


def test_hmac_sha256_is_rfc_4231_case_2() -> None:
    """RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"."""
    assert hmac_sha256("Jefe", "what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_canonical_json_sorts_every_level_drops_nulls_and_keeps_chinese() -> None:
    value = {"b": [{"z": 1, "y": None, "x": "中"}], "a": True, "n": None, "c": 1.5}
    assert canonical_json(value) == '{"a":true,"b":[{"x":"中","z":1}],"c":1.5}'
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"a": object()})
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        canonical_json({"a": float("nan")})


def test_sorted_kv_string_skips_empty_values_and_excluded_keys() -> None:
    params = {"b": "2", "a": 1, "e": "", "n": None, "sign": "x", "t": False, "o": {"k": "v"}}
    assert sorted_kv_string(params, exclude={"sign"}) == 'a=1&b=2&o={"k":"v"}&t=false'
    with pytest.raises(ValueError, match="cannot go into a sign string"):
        sorted_kv_string({"a": b"bytes"})


# --------------------------------------------------------------------------------------------
# nhsa.md §1.1: TIF
# --------------------------------------------------------------------------------------------


def test_tif_headers_follow_the_spec_string_to_sign() -> None:
    """x-tif-signature = lowercase hex SHA-256 of timestamp + token + nonce + timestamp."""
    headers = tif_headers("paas-330600", "s3cr3t", timestamp=1764150000, nonce="n-0001")
    expected = hashlib.sha256(b"1764150000s3cr3tn-00011764150000").hexdigest()
    assert headers == {
        "x-tif-paasid": "paas-330600",
        "x-tif-timestamp": "1764150000",
        "x-tif-nonce": "n-0001",
        "x-tif-signature": expected,
    }


def test_tif_signer_adds_headers_and_leaves_the_body_and_inputs_alone() -> None:
    signer: Signer = TifSigner("paas-330600", "s3cr3t", clock=lambda: NOW, nonce=lambda: "n-2")
    original = {"Content-Type": "application/json", "X-TIF-Nonce": "stale"}
    body = b'{"infno":"1101"}'
    headers, sent = signer("POST", "/fsi/api/fsiPsnInfoService/queryPsnInfo", original, body)
    assert sent is body
    assert original == {"Content-Type": "application/json", "X-TIF-Nonce": "stale"}
    assert headers == {
        "Content-Type": "application/json",
        "x-tif-paasid": "paas-330600",
        "x-tif-timestamp": "1764150000",
        "x-tif-nonce": "n-2",
        "x-tif-signature": hashlib.sha256(b"1764150000s3cr3tn-21764150000").hexdigest(),
    }
    default_nonce = TifSigner("p", "t")("POST", "/", {}, b"")[0]["x-tif-nonce"]
    assert len(default_nonce) == 36  # a .NET-style GUID
    assert default_nonce.count("-") == 4
    assert "s3cr3t" not in repr(signer)


def test_tif_rejects_empty_credentials() -> None:
    with pytest.raises(ValueError, match="TIF token"):
        TifSigner("paas", "")
    with pytest.raises(ValueError, match="TIF paas id"):
        tif_headers("", "t", timestamp=1, nonce="n")


# --------------------------------------------------------------------------------------------
# nhsa.md §1.2: Aliyun CSB
# --------------------------------------------------------------------------------------------


def _b64_hmac(secret: bytes, text: str, digest: str = "sha1") -> str:
    return base64.b64encode(hmac.new(secret, text.encode(), digest).digest()).decode()


def test_csb_signature_is_base64_hmac_sha1_of_the_sorted_pairs() -> None:
    headers = csb_headers(
        api_name="hsa.fsi.settle",
        api_version="1.0.0",
        access_key="ak-1",
        secret_key="sk-1",
        timestamp_ms=1764150000123,
    )
    text = (
        "_api_access_key=ak-1&_api_name=hsa.fsi.settle&_api_timestamp=1764150000123"
        "&_api_version=1.0.0"
    )
    assert headers == {
        "_api_name": "hsa.fsi.settle",
        "_api_version": "1.0.0",
        "_api_access_key": "ak-1",
        "_api_timestamp": "1764150000123",
        "_api_signature": _b64_hmac(b"sk-1", text),
    }


def test_csb_signer_signs_form_parameters_decoded_and_repeated() -> None:
    signer: Signer = CsbSigner(
        api_name=lambda path: path.rsplit("/", 1)[-1],
        api_version="1.0.0",
        access_key="ak-1",
        secret_key="sk-1",
        clock=lambda: NOW,
    )
    form_headers = {"content-type": "application/x-www-form-urlencoded; charset=UTF-8"}
    body = b"b=2&a=1&a=%E7%BB%8D%E5%85%B4&empty="
    headers, sent = signer("POST", "/api/queryPsnInfo", form_headers, body)
    assert sent == body
    text = (
        "_api_access_key=ak-1&_api_name=queryPsnInfo&_api_timestamp=1764150000123"
        "&_api_version=1.0.0&a=1&a=绍兴&b=2&empty="
    )
    assert headers["_api_signature"] == _b64_hmac(b"sk-1", text)
    assert headers["content-type"] == form_headers["content-type"]
    # A JSON body is not part of the CSB signature.
    json_headers, _ = signer("POST", "/api/x", {"Content-Type": "application/json"}, b"{}")
    text = "_api_access_key=ak-1&_api_name=x&_api_timestamp=1764150000123&_api_version=1.0.0"
    assert json_headers["_api_signature"] == _b64_hmac(b"sk-1", text)


def test_csb_optional_hmac_sha256_and_reserved_names() -> None:
    headers = csb_headers(
        api_name="n", api_version="1", access_key="a", secret_key="s", timestamp_ms=5,
        digest="sha256",
    )  # fmt: skip
    text = "_api_access_key=a&_api_name=n&_api_timestamp=5&_api_version=1"
    assert headers["_api_signature"] == _b64_hmac(b"s", text, "sha256")
    with pytest.raises(ValueError, match="reserved CSB names"):
        csb_headers(
            api_name="n", api_version="1", access_key="a", secret_key="s", timestamp_ms=5,
            form={"_api_name": ["evil"]},
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# mobilepay_evoucher_healthcard.md §6.2: regional SHA-256 signature
# --------------------------------------------------------------------------------------------


def test_regional_signature_is_base64_sha256_of_pairs_plus_secret() -> None:
    params: dict[str, Any] = {
        "healthCardId": "A" * 64,
        "idType": "01",
        "codeType": 0,
        "extra": "",
        "note": None,
        "sign": "old",
        "hospital": {"name": "绍兴市人民医院", "code": "H33060200001"},
    }
    text = (
        'codeType=0&healthCardId=' + "A" * 64
        + '&hospital={"code":"H33060200001","name":"绍兴市人民医院"}&idType=01'
        + "appSecret-xyz"
    )  # fmt: skip
    expected = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    assert regional_sha256_signature(params, "appSecret-xyz") == expected
    with pytest.raises(ValueError, match="app secret"):
        regional_sha256_signature(params, "")


# --------------------------------------------------------------------------------------------
# mobilepay_evoucher_healthcard.md §2: mobile-pay envelope
# --------------------------------------------------------------------------------------------

APP_ID = "1GQ8SHB1A0A8AC6F0A0A0000B0A9A0E5"
APP_SECRET = "9A7F0B1C2D3E4F5061728394A5B6C7D8"
DATA = {"payOrdId": "ORD0001", "orgCodg": "H33060200001", "psnName": "张三", "memo": None}
DATA_JSON = '{"orgCodg":"H33060200001","payOrdId":"ORD0001","psnName":"张三"}'


def reference_data_key() -> bytes:
    """Spec §2.3 by hand: SM4-ECB(appId[:16], appSecret), upper-case hex, first 16 chars."""
    return sm4_ecb(APP_ID[:16].encode(), APP_SECRET.encode()).hex().upper()[:16].encode()


@pytest.fixture(scope="module")
def hospital_key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


@pytest.fixture(scope="module")
def platform_key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


@pytest.fixture(scope="module")
def config(hospital_key: Sm2PrivateKey, platform_key: Sm2PrivateKey) -> MobilePayConfig:
    return MobilePayConfig(APP_ID, APP_SECRET, hospital_key, platform_key.public_key)


def test_mobilepay_sign_string_follows_the_four_steps() -> None:
    fields = {
        "version": "2.0.1",
        "timestamp": "1764150000123",
        "signType": "SM2",
        "encType": "SM4",
        "appId": APP_ID,
        "data": DATA,
        "encData": "ABCD",
        "signData": "xyz=",
        "extra": {"ignored": True},
        "empty": "",
        "none": None,
    }
    assert mobilepay_sign_string(fields, APP_SECRET) == (
        f"appId={APP_ID}&data={DATA_JSON}&encType=SM4&signType=SM2"
        f"&timestamp=1764150000123&version=2.0.1&key={APP_SECRET}"
    )


def test_mobilepay_data_key_and_enc_data_match_a_hand_computation() -> None:
    key = reference_data_key()
    assert len(key) == 16
    assert mobilepay_data_key(APP_ID, APP_SECRET) == key
    with pytest.raises(ValueError, match="at least 16 bytes"):
        mobilepay_data_key("short-app-id", APP_SECRET)


def test_mobilepay_request_is_signed_then_encrypted(
    config: MobilePayConfig, hospital_key: Sm2PrivateKey
) -> None:
    sealed = seal_mobilepay_request({"data": DATA}, config, timestamp_ms=1764150000123)
    assert set(sealed) == {
        "appId", "encType", "signType", "timestamp", "version", "encData", "signData",
    }  # fmt: skip
    assert (sealed["appId"], sealed["encType"], sealed["signType"]) == (APP_ID, "SM4", "SM2")
    assert (sealed["timestamp"], sealed["version"]) == ("1764150000123", "2.0.1")
    expected_enc = sm4_ecb(reference_data_key(), DATA_JSON.encode()).hex().upper()
    assert sealed["encData"] == expected_enc
    sign_string = (
        f"appId={APP_ID}&data={DATA_JSON}&encType=SM4&signType=SM2"
        f"&timestamp=1764150000123&version=2.0.1&key={APP_SECRET}"
    )
    signature = base64.b64decode(sealed["signData"])
    assert signature[0] == 0x30  # DER by default
    hospital_key.public_key.verify(sign_string.encode(), signature)


@needs_openssl_sm2
def test_mobilepay_sign_data_verifies_in_openssl(
    config: MobilePayConfig, hospital_key: Sm2PrivateKey, tmp_path: Path
) -> None:
    """The signData checked by OpenSSL against the hand-written sign string."""
    sealed = seal_mobilepay_request({"data": DATA}, config, timestamp_ms=1764150000123)
    sign_string = (
        f"appId={APP_ID}&data={DATA_JSON}&encType=SM4&signType=SM2"
        f"&timestamp=1764150000123&version=2.0.1&key={APP_SECRET}"
    )
    signature = base64.b64decode(sealed["signData"])
    uid = b"1234567812345678"
    assert openssl_verify(hospital_key.public_key, sign_string.encode(), signature, uid, tmp_path)


def platform_response(platform_key: Sm2PrivateKey, data: dict[str, Any]) -> dict[str, Any]:
    """A response as the platform would build it, following the spec by hand."""
    data_json = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    response: dict[str, Any] = {
        "appId": APP_ID,
        "code": "0",
        "message": "成功",
        "success": True,
        "encType": "SM4",
        "signType": "SM2",
        "timestamp": "1764150001000",
        "version": "2.0.1",
        "encData": sm4_ecb(reference_data_key(), data_json.encode()).hex().upper(),
    }
    sign_string = (
        f"appId={APP_ID}&code=0&data={data_json}&encType=SM4&message=成功&signType=SM2"
        f"&success=true&timestamp=1764150001000&version=2.0.1&key={APP_SECRET}"
    )
    response["signData"] = base64.b64encode(platform_key.sign(sign_string.encode())).decode()
    return response


def test_mobilepay_response_is_verified_and_decrypted(
    config: MobilePayConfig, platform_key: Sm2PrivateKey
) -> None:
    data = {"ordStas": "1", "payOrdId": "ORD0001", "feeSumamt": "12.30"}
    opened = open_mobilepay_response(platform_response(platform_key, data), config)
    assert opened["data"] == data
    assert opened["code"] == "0"
    assert "signData" not in opened
    assert "encData" not in opened


def test_mobilepay_tampered_or_unsigned_responses_are_value_errors(
    config: MobilePayConfig, platform_key: Sm2PrivateKey, hospital_key: Sm2PrivateKey
) -> None:
    data = {"ordStas": "1", "payOrdId": "ORD0001"}
    good = platform_response(platform_key, data)
    with pytest.raises(InvalidSignatureError):
        open_mobilepay_response({**good, "code": "-1"}, config)
    forged = platform_response(hospital_key, data)  # signed with the wrong key
    with pytest.raises(InvalidSignatureError):
        open_mobilepay_response(forged, config)
    other = platform_response(platform_key, {"ordStas": "2", "payOrdId": "ORD0001"})
    with pytest.raises(InvalidSignatureError):
        open_mobilepay_response({**good, "encData": other["encData"]}, config)
    with pytest.raises(ValueError, match="not valid hex"):
        open_mobilepay_response({**good, "encData": "XYZ"}, config)
    with pytest.raises(ValueError, match="Base64"):
        open_mobilepay_response({**good, "signData": "%%%"}, config)
    unsigned = {k: v for k, v in good.items() if k != "signData"}
    with pytest.raises(InvalidSignatureError, match="no signData"):
        open_mobilepay_response(unsigned, config)
    assert open_mobilepay_response(unsigned, config, require_signature=False)["data"] == data


def test_mobilepay_raw_signature_format_round_trip(platform_key: Sm2PrivateKey) -> None:
    hospital = MobilePayConfig(
        APP_ID, APP_SECRET, Sm2PrivateKey.generate(), platform_key.public_key,
        signature_format="raw",
    )  # fmt: skip
    sealed = seal_mobilepay_request({"data": DATA}, hospital, timestamp_ms=1)
    assert len(base64.b64decode(sealed["signData"])) == 64
    # The platform's view of the same channel: its own key signs, ours verifies.
    platform = MobilePayConfig(
        APP_ID, APP_SECRET, platform_key, hospital.private_key.public_key, signature_format="raw"
    )
    back = open_mobilepay_response(sealed, platform)
    assert back["data"] == {k: v for k, v in DATA.items() if v is not None}


def test_mobilepay_signer_wraps_the_body(config: MobilePayConfig) -> None:
    signer: Signer = MobilePaySigner(config, clock=lambda: NOW)
    body = json.dumps({"data": DATA}, ensure_ascii=False).encode()
    headers, sent = signer("POST", "/org/local/api/hos/query_order_info", {"A": "1"}, body)
    assert headers == {"A": "1"}
    envelope = json.loads(sent)
    assert envelope["timestamp"] == "1764150000123"
    assert "data" not in envelope
    assert envelope["encData"] == sm4_ecb(reference_data_key(), DATA_JSON.encode()).hex().upper()
    with pytest.raises(ValueError, match="'data' node"):
        signer("POST", "/x", {}, b'{"appId":"x"}')
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        signer("POST", "/x", {}, b"not json")
    assert APP_SECRET not in repr(config)


# --------------------------------------------------------------------------------------------
# mobilepay_evoucher_healthcard.md §4: e-health card
# --------------------------------------------------------------------------------------------

EHC_SECRET = "6F4A1C2B3D5E7F90"  # 16 characters: used as the SM4 key itself by default
BIZ = {"ehealth_code": "A" * 64 + ":1::5100A0013", "medstepcode": "010101", "channelcode": "01"}
BIZ_JSON = (
    '{"channelcode":"01","ehealth_code":"' + "A" * 64 + ':1::5100A0013","medstepcode":"010101"}'
)


def ehc_config(**options: Any) -> HealthCardConfig:
    return HealthCardConfig(
        app_id="9D19FF05-4D51-4596-BEC5-CAD5818A0385",
        app_secret=EHC_SECRET,
        version="X.M.0.1",
        term_id="SK0001",
        options=HealthCardOptions(**options),
    )


def ehc_digest_text(biz_value: str, suffix: str) -> str:
    return (
        "app_id=9D19FF05-4D51-4596-BEC5-CAD5818A0385&biz_content=" + biz_value
        + "&digest_type=SM3&enc_type=SM4&method=ehc.ehealthcode.verify&term_id=SK0001"
        + "&timestamp=1764150000123&version=X.M.0.1" + suffix
    )  # fmt: skip


def test_healthcard_default_digest_hashes_plain_text_with_app_secret_param() -> None:
    sealed = seal_healthcard_request(
        "ehc.ehealthcode.verify", BIZ, ehc_config(), timestamp_ms=1764150000123
    )
    cipher_b64 = base64.b64encode(sm4_ecb(EHC_SECRET.encode(), BIZ_JSON.encode())).decode()
    assert sealed["biz_content"] == cipher_b64
    text = ehc_digest_text(BIZ_JSON, f"&app_secret={EHC_SECRET}")
    assert sealed["digest"] == hashlib.new("sm3", text.encode()).hexdigest()
    assert (sealed["enc_type"], sealed["digest_type"]) == ("SM4", "SM3")


def test_healthcard_alternative_choices() -> None:
    """Cipher text hashed, secret appended directly, hex cipher text, upper-case digest."""
    options = {
        "digest_over": "cipher",
        "secret_suffix": "raw",
        "cipher_encoding": "hex",
        "digest_uppercase": True,
    }
    sealed = seal_healthcard_request(
        "ehc.ehealthcode.verify", BIZ, ehc_config(**options), timestamp_ms=1764150000123
    )
    cipher_hex = sm4_ecb(EHC_SECRET.encode(), BIZ_JSON.encode()).hex().upper()
    assert sealed["biz_content"] == cipher_hex
    text = ehc_digest_text(cipher_hex, EHC_SECRET)
    assert sealed["digest"] == hashlib.new("sm3", text.encode()).hexdigest().upper()


def test_healthcard_hex_secret_as_key() -> None:
    secret = "00112233445566778899aabbccddeeff"
    config = HealthCardConfig("app", secret, "1.0", options=HealthCardOptions(key_encoding="hex"))
    sealed = seal_healthcard_request("m", {"a": 1}, config, timestamp_ms=1)
    expected = sm4_ecb(bytes.fromhex(secret), b'{"a":1}')
    assert base64.b64decode(sealed["biz_content"]) == expected


def test_healthcard_digest_string_keeps_empty_term_id_and_needs_every_field() -> None:
    fields = {
        "app_id": "a", "biz_content": "b", "digest_type": "SM3", "enc_type": "SM4",
        "method": "m", "term_id": "", "timestamp": "1", "version": "v",
    }  # fmt: skip
    assert healthcard_digest_string(fields, "s" * 16, HealthCardOptions()) == (
        "app_id=a&biz_content=b&digest_type=SM3&enc_type=SM4&method=m&term_id=&timestamp=1"
        "&version=v&app_secret=ssssssssssssssss"
    )
    del fields["method"]
    with pytest.raises(ValueError, match="'method'"):
        healthcard_digest_string(fields, "s" * 16, HealthCardOptions())


def test_healthcard_response_round_trip_and_tamper() -> None:
    config = ehc_config()
    response = seal_healthcard_request(
        "ehc.ehealthcode.verify", {"result": "0", "name": "李四"}, config, timestamp_ms=2
    )
    opened = open_healthcard_response(response, config)
    assert opened["biz_content"] == {"result": "0", "name": "李四"}
    with pytest.raises(InvalidSignatureError):
        open_healthcard_response({**response, "timestamp": "3"}, config)
    relaxed = open_healthcard_response({**response, "timestamp": "3"}, config, check_digest=False)
    assert relaxed["biz_content"]["name"] == "李四"
    with pytest.raises(ValueError, match="Base64"):
        open_healthcard_response({**response, "biz_content": "***"}, config)


def test_healthcard_bad_secret_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="16-byte SM4 key"):
        HealthCardConfig("app", "too-short", "1.0")
    with pytest.raises(ValueError, match="not valid hex"):
        HealthCardConfig("app", "zz" * 16, "1.0", options=HealthCardOptions(key_encoding="hex"))


def test_healthcard_signer_wraps_the_body() -> None:
    signer: Signer = HealthCardSigner(ehc_config(), clock=lambda: NOW)
    body = json.dumps({"method": "ehc.ehealthcode.verify", "biz_content": BIZ}).encode()
    _, sent = signer("POST", "/erhc/ehealthcard/business.do", {}, body)
    request = json.loads(sent)
    assert request["timestamp"] == "1764150000123"
    text = ehc_digest_text(BIZ_JSON, f"&app_secret={EHC_SECRET}")
    assert request["digest"] == hashlib.new("sm3", text.encode()).hexdigest()
    with pytest.raises(ValueError, match="'method' and 'biz_content'"):
        signer("POST", "/", {}, b'{"method":"x"}')
