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

``add_masks`` therefore never expands a whole mask: it walks the vector in
blocks of ``BLOCK`` coordinates and adds every seed's keystream for that block
(AES-CTR's counter starts anywhere, so a block's keystream is computed on its
own) while the block of the sum and of the keystream stay in the core's cache;
expanding whole 5 MB masks made every mask a trip to memory and back. Threads
take disjoint ranges of blocks: OpenSSL and numpy release the GIL.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from secagg.errors import SecAggError
from secagg.keys import SEED_BYTES

_KEY_BYTES = 16
_AES_BLOCK = 16  # bytes per counter value: 4 uint32 coordinates
BLOCK = 1 << 16  # coordinates per cache block: 256 KiB of sum and 256 KiB of keystream


def add_masks(total: np.ndarray, plus: Sequence[bytes], minus: Sequence[bytes], *, threads: int = 1) -> None:
    """``total += sum(PRG(s) for s in plus) - sum(PRG(s) for s in minus)`` mod 2^32, in place.

    ``total``: ``(length,)`` contiguous uint32 (numpy's uint32 arithmetic wraps: addition mod 2^32).
    ``threads``: how many threads share the blocks (the result does not depend on it).
    """
    if total.dtype != np.uint32 or total.ndim != 1 or not total.flags.c_contiguous or not total.flags.writeable:
        raise SecAggError("bad_config", f"masks go into a writable contiguous (m,) uint32 vector, not {total.dtype}")
    if threads < 1:
        raise SecAggError("bad_config", f"threads must be positive, got {threads}")
    for seed in (*plus, *minus):
        if len(seed) != SEED_BYTES:
            raise SecAggError("bad_message", f"a PRG seed is {SEED_BYTES} bytes, got {len(seed)}")
    blocks = -(-total.size // BLOCK)
    parts = max(1, min(threads, blocks))
    bounds = [min(total.size, round(i * blocks / parts) * BLOCK) for i in range(parts + 1)]  # block-aligned
    ranges = list(itertools.pairwise(bounds))
    if parts == 1:
        _add_range(total, plus, minus, *ranges[0])
        return
    with ThreadPoolExecutor(max_workers=parts) as pool:
        for done in [pool.submit(_add_range, total, plus, minus, lo, hi) for lo, hi in ranges]:
            done.result()


def _add_range(total: np.ndarray, plus: Sequence[bytes], minus: Sequence[bytes], start: int, stop: int) -> None:
    """``add_masks`` over coordinates [start, stop) (``start`` block-aligned), one block at a time."""
    counter = (4 * start // _AES_BLOCK).to_bytes(_AES_BLOCK, "big")  # the keystream from byte 4 * start on
    streams = [(_keystream(s, counter), True) for s in plus] + [(_keystream(s, counter), False) for s in minus]
    width = min(BLOCK, stop - start)
    zeros = memoryview(bytes(4 * width))
    buffer = bytearray(4 * width + _AES_BLOCK)  # update_into wants a block of slack
    view = np.frombuffer(buffer, dtype="<u4", count=width)  # (width,)
    for lo in range(start, stop, BLOCK):
        m = min(BLOCK, stop - lo)
        part, keys, plain = total[lo : lo + m], view[:m], zeros[: 4 * m]  # (m,), (m,), 4m bytes
        for stream, positive in streams:
            stream.update_into(plain, buffer)
            if positive:
                np.add(part, keys, out=part)
            else:
                np.subtract(part, keys, out=part)


def _keystream(seed: bytes, counter: bytes) -> CipherContext:
    return Cipher(algorithms.AES(seed[:_KEY_BYTES]), modes.CTR(counter)).encryptor()


def expand(seed: bytes, length: int) -> np.ndarray:
    """``length`` pseudorandom uint32 values (``(length,)``) from a 32-byte ``seed``; deterministic, a fresh array."""
    if length < 0:
        raise SecAggError("bad_config", f"mask length must be non-negative, got {length}")
    out = np.zeros(length, dtype=np.uint32)
    add_masks(out, [seed], [])
    return out
