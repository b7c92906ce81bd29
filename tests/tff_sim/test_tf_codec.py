"""tff_sim.tf_codec: the TensorFlow codec produces wire.update's levels, ranges and decoded tensors exactly."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tff_sim import tf_codec
from wire.codec import unpack_bits
from wire.counter_rng import derive_key, random_bits, random_signs
from wire.update import decode_update, encode_update

_SHAPES = [(3,), (5, 7), (1500,), (1,), (2, 1100)]  # 1500 and 2200 rotate in two blocks (1024 + padded tail)


def _seed(value: int) -> tf.Tensor:
    return tf.constant(value, tf.int64)


def _delta(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * 0.01).astype(np.float32) for s in _SHAPES]


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1, 2**40 + 3])
def test_counter_rng_tf_equals_numpy(seed: int) -> None:
    key = tf_codec.derive_key(tf.constant(seed, tf.int64), 5, 9)
    assert int(key.numpy()) == derive_key(seed, 5, 9)
    np.testing.assert_array_equal(tf_codec.random_bits(key, 4097).numpy(), random_bits(derive_key(seed, 5, 9), 4097))
    np.testing.assert_array_equal(tf_codec.random_signs(key, 64).numpy(), random_signs(derive_key(seed, 5, 9), 64))


@pytest.mark.parametrize(("bits", "seed", "rotation"), [(8, 11, 5), (4, 3, 2**32 - 1), (2, 2**31 + 5, 0)])
def test_tensor_levels_equal_wire_update_levels(bits: int, seed: int, rotation: int) -> None:
    delta = _delta(seed % 1000)
    blob = encode_update(
        delta, codec=f"quant{bits}", round=4, base_version=1, weight=2.0, seed=seed, rotation_seed=rotation
    )
    message = decode_update(blob)
    for i, (d, t) in enumerate(zip(delta, message.tensors, strict=True)):
        flat = tf.constant(d.astype(np.float64).ravel())
        levels, lo, hi = tf_codec.tensor_levels(flat, _seed(rotation), _seed(seed), i, bits)
        wire_levels = unpack_bits(message.payload[t.offset : t.offset + t.length], bits, t.padded)
        np.testing.assert_array_equal(levels.numpy(), wire_levels)
        assert (float(lo), float(hi)) == (t.lo, t.hi)


@pytest.mark.parametrize("codec", ["quant8", "quant2", "float32"])
def test_encode_decode_equals_what_the_server_decodes(codec: str) -> None:
    delta = _delta(5)
    bits = {"quant8": 8, "quant2": 2, "float32": None}[codec]
    blob = encode_update(delta, codec=codec, round=0, base_version=0, weight=1.0, seed=99, rotation_seed=7)
    server = decode_update(blob).decode_tensors()
    simulated = tf_codec.encode_decode([tf.constant(d) for d in delta], _seed(7), _seed(99), bits)
    for s, w in zip(simulated, server, strict=True):
        np.testing.assert_array_equal(s.numpy(), w)


def test_encode_decode_clips_like_the_device() -> None:
    delta = _delta(6)
    blob = encode_update(
        delta, codec="quant8", round=0, base_version=0, weight=1.0, seed=4, rotation_seed=1, clip_norm=0.05
    )
    server = decode_update(blob).decode_tensors()
    simulated = tf_codec.encode_decode([tf.constant(d) for d in delta], _seed(1), _seed(4), 8, clip_norm=0.05)
    # the global norm is summed in another order: at most a rounding flip of a level here and there
    worst = max(float(np.max(np.abs(s.numpy() - w))) for s, w in zip(simulated, server, strict=True))
    assert worst < 1e-4
    assert np.sqrt(sum(float(np.sum(s.numpy().astype(np.float64) ** 2)) for s in simulated)) < 0.05 * 1.05


def test_quantize_constant_vector_is_all_level_zero() -> None:
    levels, lo, hi = tf_codec.quantize(tf.constant([2.5, 2.5, 2.5], tf.float64), 4, tf.zeros([3], tf.float64))
    assert (levels.numpy().tolist(), float(lo), float(hi)) == ([0, 0, 0], 2.5, 2.5)
