"""Signing hooks for the outbound adapters.

`gm` holds the GM/T primitives (SM2 with SM3, SM3, SM4); `gateway` (insurance gateway
headers), `mobilepay` and `healthcard` build each platform's signature or envelope on them,
with `common` what they share. Transports take any `Signer`.
"""

from adapters.signing.common import (
    Signer,
)
from adapters.signing.gateway import (
    CsbSigner,
    TifSigner,
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
from adapters.signing.healthcard import (
    HealthCardConfig,
    HealthCardOptions,
    HealthCardSigner,
    open_healthcard_response,
)
from adapters.signing.mobilepay import (
    MobilePayConfig,
    MobilePaySigner,
    open_mobilepay_response,
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
