"""Counter-based random numbers for the update codec, reproducible in numpy and in TensorFlow.

The codec draws two kinds of randomness: the rotation's random signs and the
stochastic rounding's uniforms. Simulation must draw exactly the same numbers
as a phone for the same seed, so that a simulated compressed round predicts a
deployed one level for level (issue 16). numpy's ``Generator`` streams cannot
be reproduced inside a TensorFlow graph that TFF's C++ workers run, so the codec
uses a counter-based generator instead (Salmon et al. 2011, "Parallel Random
Numbers: As Easy as 1, 2, 3"): draw ``j`` of a stream is a keyed hash of ``j``,
here MurmurHash3's 32-bit finalizer ``fmix32`` (Appleby 2008), a bijection of
32-bit words with full avalanche, applied twice. Only 32-bit unsigned
multiply, xor and shift are used, which numpy and TensorFlow compute alike;
``tff_sim.tf_codec`` is the TensorFlow twin, and a test checks they agree bit
for bit.

- ``derive_key(seed, *words)``: a 32-bit key from a seed (< 2**64) and small
  integers (salt, tensor index, block index);
- ``random_bits(key, n)``: n 32-bit draws of the stream ``key``;
- ``uniforms(key, n)``: those draws as floats in [0, 1) (exact, ``bits / 2**32``);
- ``random_signs(key, m)``: +-1 from the draws' top bits.
"""

from __future__ import annotations

import numpy as np

MASK32 = 0xFFFFFFFF
GOLDEN32 = 0x9E3779B9  # 2**32 / golden ratio, odd: j -> j * GOLDEN32 is a bijection mod 2**32
KEY_TWEAK = 0x7F4A7C15
FMIX_C1 = 0x85EBCA6B
FMIX_C2 = 0xC2B2AE35


def fmix32(h: np.ndarray | np.uint32) -> np.ndarray:
    """MurmurHash3's finalizer on uint32 words, elementwise (wraps mod 2**32)."""
    x: np.ndarray = np.asarray(h, dtype=np.uint32)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(FMIX_C1)
        x = x ^ (x >> np.uint32(13))
        x = x * np.uint32(FMIX_C2)
        return np.asarray(x ^ (x >> np.uint32(16)), dtype=np.uint32)


def derive_key(seed: int, *words: int) -> int:
    """A 32-bit stream key from ``seed`` (0 <= seed < 2**64) and non-negative 32-bit ``words``."""
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    if any(not 0 <= w <= MASK32 for w in words):
        raise ValueError(f"key words must be in [0, 2**32), got {words}")
    h = fmix32(np.uint32((seed & MASK32) ^ GOLDEN32))
    for word in (seed >> 32, *words):
        h = fmix32(h ^ fmix32(np.uint32(word ^ KEY_TWEAK)))
    return int(h)


def random_bits(key: int, n: int) -> np.ndarray:
    """Draws 0..n-1 of stream ``key``: ``fmix32(fmix32(j * GOLDEN32 ^ key) ^ key2)``, uint32 (n,)."""
    if not 0 <= key <= MASK32 or n < 0 or n > MASK32:
        raise ValueError(f"need a 32-bit key and 0 <= n < 2**32, got key={key}, n={n}")
    with np.errstate(over="ignore"):
        j = np.arange(n, dtype=np.uint32) * np.uint32(GOLDEN32)  # (n,) distinct mod 2**32
    key2 = fmix32(np.uint32(key ^ FMIX_C1))
    return fmix32(fmix32(j ^ np.uint32(key)) ^ key2)


def uniforms(key: int, n: int) -> np.ndarray:
    """n uniforms in [0, 1), float64 (n,), each a multiple of 2**-32."""
    return random_bits(key, n).astype(np.float64) * 2.0**-32


def random_signs(key: int, m: int) -> np.ndarray:
    """m random signs +-1.0, float64 (m,): minus where a draw's top bit is set."""
    return 1.0 - 2.0 * (random_bits(key, m) >> np.uint32(31)).astype(np.float64)
