from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.errors import SecAggError
from secagg.prg import BLOCK, add_masks, expand


def test_expand_deterministic_and_seed_dependent() -> None:
    a = expand(b"a" * 32, 1000)
    assert a.dtype == np.uint32 and a.shape == (1000,)
    assert np.array_equal(a, expand(b"a" * 32, 1000))
    assert not np.array_equal(a, expand(b"b" * 32, 1000))
    assert np.array_equal(expand(b"a" * 32, 10), a[:10])  # a prefix of the same stream


def test_expand_output_uniform_bytes() -> None:
    counts = np.bincount(expand(bytes(range(32)), 1 << 14).view(np.uint8), minlength=256)
    expected = counts.sum() / 256
    assert np.sum((counts - expected) ** 2) / expected < 330.52  # chi-square(255) upper 1e-3 quantile


def test_expand_bad_arguments_refused() -> None:
    with pytest.raises(SecAggError, match="32 bytes"):
        expand(b"short", 4)
    with pytest.raises(SecAggError, match="non-negative"):
        expand(b"a" * 32, -1)
    assert expand(b"a" * 32, 0).shape == (0,)


def _keystream(seed: bytes, length: int) -> np.ndarray:
    """The PRG as specified, in one piece: AES-128-CTR (key = the seed's first 16 bytes, counter 0) over zeros."""
    encryptor = Cipher(algorithms.AES(seed[:16]), modes.CTR(bytes(16))).encryptor()
    return np.frombuffer(encryptor.update(bytes(4 * length)), dtype="<u4")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_add_masks_block_by_block_equals_whole_keystreams(threads: int) -> None:
    length = 2 * BLOCK + 1234 + 3  # three blocks, the last one short and not a whole AES block
    rng = np.random.default_rng(0)
    start = rng.integers(0, 2**32, length, dtype=np.uint32)
    plus, minus = [rng.bytes(32) for _ in range(3)], [rng.bytes(32) for _ in range(2)]
    expected = start.astype(np.int64)
    for seed in plus:
        expected += _keystream(seed, length)
    for seed in minus:
        expected -= _keystream(seed, length)
    total = start.copy()
    add_masks(total, plus, minus, threads=threads)
    assert np.array_equal(total, (expected % 2**32).astype(np.uint32))
    assert np.array_equal(expand(plus[0], length), _keystream(plus[0], length))


def test_add_masks_plus_then_minus_is_the_identity() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2**32, BLOCK + 7, dtype=np.uint32)
    y = x.copy()
    seeds = [rng.bytes(32) for _ in range(4)]
    add_masks(y, seeds, [], threads=2)
    assert not np.array_equal(y, x)
    add_masks(y, [], seeds)
    assert np.array_equal(y, x)


def test_add_masks_bad_arguments_refused() -> None:
    with pytest.raises(SecAggError, match="uint32"):
        add_masks(np.zeros(8, dtype=np.int64), [b"a" * 32], [])
    with pytest.raises(SecAggError, match="uint32"):
        add_masks(np.zeros(16, dtype=np.uint32)[::2], [b"a" * 32], [])  # not contiguous
    with pytest.raises(SecAggError, match="uint32"):
        add_masks(np.frombuffer(bytes(32), dtype=np.uint32), [b"a" * 32], [])  # read-only
    with pytest.raises(SecAggError, match="threads"):
        add_masks(np.zeros(8, dtype=np.uint32), [b"a" * 32], [], threads=0)
    with pytest.raises(SecAggError, match="32 bytes"):
        add_masks(np.zeros(8, dtype=np.uint32), [], [b"short"])
    empty = np.zeros(0, dtype=np.uint32)
    add_masks(empty, [b"a" * 32], [b"b" * 32], threads=2)
    assert empty.shape == (0,)
