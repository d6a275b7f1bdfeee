"""Signing primitives benchmark: operations per second for SM3, SM4-ECB encryption, SM2 sign
and verify (SM2 with SM3, DER signatures) and HMAC-SHA256, each on a 3 KB message (about the
size of a mobile-pay sign string or a small FSI request). Each figure is the median of several
timed runs. Not a test: it prints figures.

    python bench/signing.py [--runs 5] [--seconds 0.5]
"""

import argparse
import hashlib
import hmac
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.signing import gm

MESSAGE = ("门诊结算 2207 feedetail " * 120).encode()[:3072]
SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def ops_per_second(operation: Callable[[], object], runs: int, seconds: float) -> float:
    """Median over runs of ops/s; each run repeats the operation for about `seconds`."""
    started = time.perf_counter()
    operation()  # warm-up, and a first estimate of the cost of one call
    batch = max(1, int(seconds / max(time.perf_counter() - started, 1e-7)))
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(batch):
            operation()
        rates.append(batch / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()

    key = gm.Sm2PrivateKey.generate()
    signature = key.sign(MESSAGE)
    cases: list[tuple[str, Callable[[], object]]] = [
        (f"SM3 3 KB ({gm.SM3_BACKEND})", lambda: gm.sm3(MESSAGE)),
        ("SM3 3 KB (pure-Python fallback)", lambda: gm._pure_sm3(MESSAGE)),
        ("SM4-ECB encrypt 3 KB (PKCS#7)", lambda: gm.sm4_encrypt_ecb(SM4_KEY, MESSAGE)),
        ("SM2 sign 3 KB (SM3, DER)", lambda: key.sign(MESSAGE)),
        ("SM2 verify 3 KB (SM3, DER)", lambda: key.public_key.verify(MESSAGE, signature)),
        ("HMAC-SHA256 3 KB", lambda: hmac.new(b"k" * 32, MESSAGE, hashlib.sha256).digest()),
    ]
    print(f"median of {args.runs} runs of ~{args.seconds} s each; message {len(MESSAGE)} bytes")
    for name, operation in cases:
        rate = ops_per_second(operation, args.runs, args.seconds)
        print(f"{name:<36} {rate:>12,.0f} ops/s")


if __name__ == "__main__":
    main()
