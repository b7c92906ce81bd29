"""The pseudorandom generator: a 32-byte seed -> a vector of uint32 ring elements.

Masks must be as long as the model update (about 1.3M coordinates for the small
model), so both sides expand a short agreed seed with a stream cipher
(Bonawitz et al. 2017, §3 "PRG"). The keystream is ChaCha20 from the
``cryptography`` package (OpenSSL) run over zeros, read as little-endian
uint32: uniform on Z_{2^32} if ChaCha20 is a PRF.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from secagg.errors import SecAggError
from secagg.keys import SEED_BYTES

_NONCE = bytes(16)  # counter 0, nonce 0: every seed is used for exactly one stream


def expand(seed: bytes, length: int) -> np.ndarray:
    """``length`` pseudorandom uint32 values (``(length,)``) from a 32-byte ``seed``; deterministic."""
    if len(seed) != SEED_BYTES:
        raise SecAggError("bad_message", f"a PRG seed is {SEED_BYTES} bytes, got {len(seed)}")
    if length < 0:
        raise SecAggError("bad_config", f"mask length must be non-negative, got {length}")
    encryptor = Cipher(algorithms.ChaCha20(seed, _NONCE), mode=None).encryptor()
    stream = encryptor.update(bytes(4 * length))
    return np.frombuffer(stream, dtype="<u4").astype(np.uint32, copy=False)  # (length,)
