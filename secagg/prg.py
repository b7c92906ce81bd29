"""The pseudorandom generator: a 32-byte seed -> a vector of uint32 ring elements.

Masks must be as long as the model update (about 1.3M coordinates for the small
model), so both sides expand a short agreed seed with a stream cipher
(Bonawitz et al. 2017, §3 "PRG"). The keystream is AES-128 in counter mode
(OpenSSL via the ``cryptography`` package) over zeros, read as little-endian
uint32: uniform on Z_{2^32} if AES is a pseudorandom permutation (fewer than
2^64 blocks per key). The key is the seed's first 16 bytes: X25519, which
agrees the seeds, gives ~128-bit security, so a 128-bit mask key is not the
weak link, and AES-128 with the AES instructions of current CPUs (and ARMv8
phones) is the fastest keystream OpenSSL offers here — the server expands one
mask per survivor and per (dropped device, surviving neighbour) pair, 2,064
masks of 5 MB at n = 500, so the PRG is its whole unmasking cost (issue 15).

``MaskExpander`` writes each keystream into one reused buffer
(``update_into``): allocating a fresh 5 MB input and output per mask cost
more than the cipher itself.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.errors import SecAggError
from secagg.keys import SEED_BYTES

_KEY_BYTES = 16
_COUNTER = bytes(16)  # counter block 0: every seed is used for exactly one stream
_BLOCK = 16


class MaskExpander:
    """Expands seeds to ``length`` uint32 values each, into one buffer reused from call to call."""

    def __init__(self, length: int) -> None:
        if length < 0:
            raise SecAggError("bad_config", f"mask length must be non-negative, got {length}")
        self._zeros = bytes(4 * length)
        self._buffer = bytearray(4 * length + _BLOCK)  # update_into wants a block of slack
        self._view = np.frombuffer(self._buffer, dtype="<u4", count=length)  # (length,)

    def __call__(self, seed: bytes) -> np.ndarray:
        """The mask of ``seed``, ``(length,) uint32``: a view of the shared buffer, valid until the next call."""
        if len(seed) != SEED_BYTES:
            raise SecAggError("bad_message", f"a PRG seed is {SEED_BYTES} bytes, got {len(seed)}")
        encryptor = Cipher(algorithms.AES(seed[:_KEY_BYTES]), modes.CTR(_COUNTER)).encryptor()
        encryptor.update_into(self._zeros, self._buffer)
        return self._view


def expand(seed: bytes, length: int) -> np.ndarray:
    """``length`` pseudorandom uint32 values (``(length,)``) from a 32-byte ``seed``; deterministic, a fresh array."""
    return MaskExpander(length)(seed)
