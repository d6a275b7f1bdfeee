"""Signing hooks for the outbound adapters.

`gm` holds the GM/T primitives (SM2 with SM3, SM3, SM4); `gateway` builds the headers and
envelopes of each platform on top of them. Transports take any `Signer`.
"""

from adapters.signing.gateway import (
    CsbSigner,
    HealthCardConfig,
    HealthCardOptions,
    HealthCardSigner,
    MobilePayConfig,
    MobilePaySigner,
    Signer,
    TifSigner,
    open_healthcard_response,
    open_mobilepay_response,
    regional_sha256_signature,
)
from adapters.signing.gm import (
    SM2_DEFAULT_UID,
    InvalidSignatureError,
    Sm2PrivateKey,
    Sm2PublicKey,
    sm3,
    sm4_decrypt_cbc,
    sm4_decrypt_ecb,
    sm4_encrypt_cbc,
    sm4_encrypt_ecb,
)

__all__ = [
    "SM2_DEFAULT_UID",
    "CsbSigner",
    "HealthCardConfig",
    "HealthCardOptions",
    "HealthCardSigner",
    "InvalidSignatureError",
    "MobilePayConfig",
    "MobilePaySigner",
    "Signer",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "TifSigner",
    "open_healthcard_response",
    "open_mobilepay_response",
    "regional_sha256_signature",
    "sm3",
    "sm4_decrypt_cbc",
    "sm4_decrypt_ecb",
    "sm4_encrypt_cbc",
    "sm4_encrypt_ecb",
]
