"""The devices' update codec (``wire.codec`` + ``wire.update``) in TensorFlow ops, for TFF's C++ workers.

A phone clips its delta, rotates every tensor in power-of-two blocks with a
randomized Hadamard transform and quantizes it stochastically (Suresh et al.
2017; ``wire.update.encode_update``); the server decodes it. For a simulated
compressed round to predict a deployed one, simulation must add exactly that
noise, not TFF's own encoder's: the same blocks, the same random signs, the
same rounding draws, hence the same levels for the same seed. Everything here
mirrors the numpy reference step for step in float64 (the same butterfly
order in the Walsh–Hadamard transform, the same scaling), and the random words
come from ``wire.counter_rng``'s keyed hash computed with 32-bit unsigned ops,
which TensorFlow and numpy evaluate alike; ``tests/tff_sim/test_tf_codec.py``
checks levels and decoded tensors against ``wire.update`` exactly.

Block layout (``rotation_blocks``), salts and key derivation are imported from
``wire``: only the arithmetic is written twice, because one side is a graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

from wire.codec import BLOCK_SALT, ROTATION_SALT, ROUNDING_SALT, rotation_blocks
from wire.counter_rng import FMIX_C1, FMIX_C2, GOLDEN32, KEY_TWEAK, MASK32


def _u32(value: int) -> tf.Tensor:
    return tf.constant(value & MASK32, tf.uint32)


def fmix32(h: tf.Tensor) -> tf.Tensor:
    """MurmurHash3's finalizer on uint32 tensors (``wire.counter_rng.fmix32``)."""
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u32(16)))
    h = h * _u32(FMIX_C1)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u32(13)))
    h = h * _u32(FMIX_C2)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u32(16)))


def derive_key(seed: tf.Tensor, *words: int) -> tf.Tensor:
    """``wire.counter_rng.derive_key`` of an int64 scalar seed (>= 0) and constant words: a uint32 scalar."""
    seed = tf.cast(seed, tf.int64)
    low = tf.cast(tf.bitwise.bitwise_and(seed, tf.constant(MASK32, tf.int64)), tf.uint32)
    high = tf.cast(tf.bitwise.right_shift(seed, tf.constant(32, tf.int64)), tf.uint32)
    h = fmix32(tf.bitwise.bitwise_xor(low, _u32(GOLDEN32)))
    h = fmix32(tf.bitwise.bitwise_xor(h, fmix32(tf.bitwise.bitwise_xor(high, _u32(KEY_TWEAK)))))
    for word in words:
        h = fmix32(tf.bitwise.bitwise_xor(h, fmix32(_u32(word ^ KEY_TWEAK))))
    return h


def random_bits(key: tf.Tensor, n: int) -> tf.Tensor:
    """``wire.counter_rng.random_bits``: uint32 (n,)."""
    j = tf.cast(tf.range(n, dtype=tf.int64), tf.uint32) * _u32(GOLDEN32)  # (n,)
    key2 = fmix32(tf.bitwise.bitwise_xor(key, _u32(FMIX_C1)))
    return fmix32(tf.bitwise.bitwise_xor(fmix32(tf.bitwise.bitwise_xor(j, key)), key2))


def uniforms(key: tf.Tensor, n: int) -> tf.Tensor:
    """float64 (n,) in [0, 1), ``bits * 2**-32`` exactly."""
    return tf.cast(random_bits(key, n), tf.float64) * (2.0**-32)


def random_signs(key: tf.Tensor, m: int) -> tf.Tensor:
    """float64 (m,) of +-1: minus where a draw's top bit is set."""
    top = tf.cast(tf.bitwise.right_shift(random_bits(key, m), _u32(31)), tf.float64)
    return 1.0 - 2.0 * top


def fwht(x: tf.Tensor) -> tf.Tensor:
    """Orthonormal Walsh–Hadamard transform of a float64 (m,) vector, m a static power of two.

    The butterflies of ``wire.codec.fwht`` in the same order, so the float64 sums are identical.
    """
    m = int(x.shape[0])
    y = x
    h = 1
    while h < m:
        pairs = tf.reshape(y, [-1, 2, h])  # (m / 2h, 2, h)
        a, b = pairs[:, 0, :], pairs[:, 1, :]
        y = tf.reshape(tf.stack([a + b, a - b], axis=1), [m])
        h *= 2
    return y / math.sqrt(m)


def _rotate(flat: tf.Tensor, seed: tf.Tensor, m: int) -> tf.Tensor:
    """``wire.codec.hadamard_rotate``: (n,) float64 -> (m,) with ``seed`` a uint32 block key."""
    padded = tf.pad(flat, [[0, m - int(flat.shape[0])]])
    return fwht(padded * random_signs(derive_key(tf.cast(seed, tf.int64), ROTATION_SALT), m))


def _unrotate(rotated: tf.Tensor, seed: tf.Tensor, n: int) -> tf.Tensor:
    """``wire.codec.hadamard_unrotate``: (m,) -> (n,) float64."""
    m = int(rotated.shape[0])
    return (fwht(rotated) * random_signs(derive_key(tf.cast(seed, tf.int64), ROTATION_SALT), m))[:n]


def quantize(x: tf.Tensor, bits: int, draws: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``wire.codec.stochastic_quantize`` of float64 (n,), n >= 1: (levels int32 (n,), lo, hi)."""
    top = float((1 << bits) - 1)
    lo, hi = tf.reduce_min(x), tf.reduce_max(x)
    span = tf.where(hi > lo, hi - lo, tf.ones_like(hi))  # constant vector: every level is 0
    scaled = tf.clip_by_value((x - lo) / span * top, 0.0, top)  # (n,)
    floor = tf.floor(scaled)
    up = tf.cast(draws < scaled - floor, tf.float64)
    levels = tf.minimum(floor + up, top)
    levels = tf.where(hi > lo, levels, tf.zeros_like(levels))
    return tf.cast(levels, tf.int32), lo, hi


def dequantize(levels: tf.Tensor, bits: int, lo: tf.Tensor, hi: tf.Tensor) -> tf.Tensor:
    """``wire.codec.dequantize``: float64 (n,)."""
    return lo + tf.cast(levels, tf.float64) * ((hi - lo) / float((1 << bits) - 1))


def tensor_levels(
    flat: tf.Tensor, rotation_seed: tf.Tensor, rounding_seed: tf.Tensor, index: int, bits: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``wire.codec.encode_tensor``: tensor ``index`` rotated with the round's seed, rounded with the session's."""
    parts, start = [], 0
    for b, (length, padded) in enumerate(rotation_blocks(int(flat.shape[0]))):
        block_key = derive_key(rotation_seed, BLOCK_SALT, index, b)
        parts.append(_rotate(flat[start : start + length], block_key, padded))
        start += length
    rotated = tf.concat(parts, axis=0)  # (padded,)
    draws = uniforms(derive_key(rounding_seed, ROUNDING_SALT, index), int(rotated.shape[0]))
    return quantize(rotated, bits, draws)


def _decode_tensor(
    levels: tf.Tensor, lo: tf.Tensor, hi: tf.Tensor, rotation_seed: tf.Tensor, index: int, bits: int, n: int
) -> tf.Tensor:
    rotated = dequantize(levels, bits, lo, hi)  # (padded,)
    parts, start = [], 0
    for b, (length, padded) in enumerate(rotation_blocks(n)):
        block_key = derive_key(rotation_seed, BLOCK_SALT, index, b)
        parts.append(_unrotate(rotated[start : start + padded], block_key, length))
        start += padded
    return tf.concat(parts, axis=0)  # (n,)


def clip_by_global_norm(tensors: Sequence[tf.Tensor], bound: float) -> list[tf.Tensor]:
    """``wire.codec.clip_by_global_norm`` (float64 norm, scale, back to float32)."""
    wide = [tf.cast(t, tf.float64) for t in tensors]
    norm = tf.sqrt(tf.add_n([tf.reduce_sum(t * t) for t in wide]))
    scale = tf.where(norm <= bound, tf.constant(1.0, tf.float64), bound / norm)
    return [tf.cast(t * scale, tf.float32) for t in wide]


def encode_decode(
    tensors: Sequence[tf.Tensor],
    rotation_seed: tf.Tensor,
    rounding_seed: tf.Tensor,
    bits: int | None,
    clip_norm: float | None = None,
) -> list[tf.Tensor]:
    """What the server decodes from ``encode_update(tensors, seed=rounding_seed, rotation_seed=...)``: float32.

    The seeds are int64 scalar tensors (the round's rotation seed, the session's rounding seed); ``bits`` None is
    float32 (exact). Shapes as the input's.
    """
    values = [tf.cast(t, tf.float32) for t in tensors]
    if clip_norm is not None:
        values = clip_by_global_norm(values, clip_norm)
    if bits is None:
        return values
    out = []
    for i, t in enumerate(values):
        n = int(t.shape.num_elements())
        if n == 0:
            out.append(t)
            continue
        flat = tf.reshape(tf.cast(t, tf.float64), [n])
        levels, lo, hi = tensor_levels(flat, rotation_seed, rounding_seed, i, bits)
        decoded = _decode_tensor(levels, lo, hi, rotation_seed, i, bits, n)
        out.append(tf.reshape(tf.cast(decoded, tf.float32), t.shape))
    return out
