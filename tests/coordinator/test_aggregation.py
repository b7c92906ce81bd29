from __future__ import annotations

import numpy as np
import pytest

from coordinator.aggregation import RotatedSum, WeightedSum
from wire.codec import dequantize, unrotate_tensor
from wire.update import UpdateMessage, decode_update, encode_update

SHAPES = ((2, 3), (4,))


def _tensors(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(size=s).astype(np.float32) for s in SHAPES]


def test_weighted_sum_mean_is_exact_weighted_mean() -> None:
    s = WeightedSum(SHAPES)
    s.add([np.ones((2, 3), np.float32), np.zeros(4, np.float32)], 1.0)
    s.add([np.full((2, 3), 4, np.float32), np.full(4, 2, np.float32)], 3.0)
    mean = s.mean()
    np.testing.assert_array_equal(mean[0], np.full((2, 3), 13 / 4))
    np.testing.assert_array_equal(mean[1], np.full(4, 6 / 4))
    assert (s.weight, s.count) == (4.0, 2)


def test_weighted_sum_roundtrips_bytes_and_order_does_not_matter() -> None:
    rng = np.random.default_rng(0)
    updates = [(_tensors(rng), float(w)) for w in rng.integers(1, 100, size=20)]
    a = WeightedSum(SHAPES)
    for t, w in updates:
        a = WeightedSum.from_bytes(SHAPES, a.to_bytes(), a.weight)  # persisted between every add
        a.add(t, w)
    b = WeightedSum(SHAPES)
    for t, w in reversed(updates):
        b.add(t, w)
    expected = [sum(w * t[i].astype(np.float64) for t, w in updates) / sum(w for _, w in updates) for i in range(2)]
    for got_a, got_b, want in zip(a.mean(), b.mean(), expected, strict=True):
        np.testing.assert_allclose(got_a, want, rtol=1e-12)
        np.testing.assert_allclose(got_b, want, rtol=1e-12)


def test_weighted_sum_bad_inputs_raise_and_change_nothing() -> None:
    s = WeightedSum(SHAPES)
    with pytest.raises(ValueError, match="tensors"):
        s.add([np.ones((2, 3), np.float32)], 1.0)
    with pytest.raises(ValueError, match="shape"):
        s.add([np.ones((3, 2), np.float32), np.ones(4, np.float32)], 1.0)
    with pytest.raises(ValueError, match="weight"):
        s.add([np.ones((2, 3), np.float32), np.ones(4, np.float32)], float("nan"))
    assert s.weight == 0 and not s.total.any()
    with pytest.raises(ValueError, match="bytes"):
        WeightedSum.from_bytes(SHAPES, b"\0" * 8, 0.0)
    with pytest.raises(ValueError, match="empty"):
        s.mean()


def test_weighted_sum_merge_of_shards_equals_one_sum() -> None:
    rng = np.random.default_rng(1)
    updates = [(_tensors(rng), float(w)) for w in (1, 2, 3, 4, 5)]
    whole, shards = WeightedSum(SHAPES), [WeightedSum(SHAPES), WeightedSum(SHAPES)]
    for i, (t, w) in enumerate(updates):
        whole.add(t, w)
        shards[i % 2].add(t, w)
    merged = WeightedSum(SHAPES)
    for shard in shards:
        merged.merge(WeightedSum.from_bytes(SHAPES, shard.to_bytes(), shard.weight))
    for got, want in zip(merged.mean(), whole.mean(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="merge"):
        merged.merge(WeightedSum(((1,),)))


ROT_SHAPES = ((3, 4), (5,), (2100,))  # the last one rotates in blocks 2048 + 52 (padded to 64)


def _message(i: int, codec: str, rotation_seed: int = 9) -> UpdateMessage:
    rng = np.random.default_rng([3, i])
    deltas = [rng.normal(size=s).astype(np.float32) for s in ROT_SHAPES]
    rot = None if codec == "float32" else rotation_seed
    return decode_update(
        encode_update(deltas, codec=codec, round=0, base_version=0, weight=1.0, seed=i, rotation_seed=rot)
    )


def _decode64(m: UpdateMessage) -> list[np.ndarray]:
    """One update decoded on its own in float64 (``decode_tensors`` rounds to float32)."""
    out = []
    for i, t in enumerate(m.tensors):
        if t.bits is None:
            out.append(m.values(i).astype(np.float64).reshape(t.shape))
        else:
            rotated = dequantize(m.levels(i), t.bits, t.lo, t.hi)
            out.append(unrotate_tensor(rotated, 9, i, t.size).reshape(t.shape))
    return out


@pytest.mark.parametrize("codec", ["float32", "quant8", "quant4", "quant2"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rotated_sum_unrotated_once_equals_the_sum_of_decoded_updates(codec: str, dtype: type) -> None:
    """Suresh et al. 2017: with one rotation per round, sum then unrotate == unrotate each then sum."""
    messages = [_message(i, codec) for i in range(5)]
    weights = [1.0, 2.5, 3.0, 0.5, 7.0]
    acc = RotatedSum(ROT_SHAPES, rotated=codec != "float32", dtype=dtype)
    for m, w in zip(messages, weights, strict=True):
        acc.add(m, w)
    got = acc.unrotated(None if codec == "float32" else 9)
    want = WeightedSum(ROT_SHAPES)
    for m, w in zip(messages, weights, strict=True):
        want.add(_decode64(m), w)
    assert (got.weight, got.count) == (sum(weights), 5)
    np.testing.assert_allclose(got.total, want.total, rtol=0, atol=1e-9 if dtype is np.float64 else 1e-4)


@pytest.mark.parametrize("codec", ["float32", "quant8"])
def test_rotated_sum_odd_update_waits_for_a_pair_and_every_read_adds_it(codec: str) -> None:
    """Updates go in two at a time; one left waiting is counted at once and in any read, merge or bytes."""
    rotation = None if codec == "float32" else 9
    m1, m2, m3 = (_message(i, codec) for i in range(3))
    want = WeightedSum(ROT_SHAPES)
    for m, w in ((m1, 2.0), (m2, 3.0), (m3, 0.5)):
        want.add(_decode64(m), w)
    alone = RotatedSum(ROT_SHAPES, rotated=rotation is not None)
    alone.add(m1, 2.0)
    assert (alone.count, alone.weight) == (1, 2.0)  # counted before its coordinates go in
    restored = RotatedSum.from_bytes(ROT_SHAPES, rotated=rotation is not None, blob=alone.to_bytes())
    pair = RotatedSum(ROT_SHAPES, rotated=rotation is not None)
    pair.add(m2, 3.0)
    pair.add(m3, 0.5)  # the pair goes in together
    pair.merge(restored)
    got = pair.unrotated(rotation)
    assert (got.count, got.weight) == (3, 5.5)
    np.testing.assert_allclose(got.total, want.total, rtol=0, atol=1e-9)
    waiting = RotatedSum(ROT_SHAPES, rotated=rotation is not None)
    waiting.add(m1, 2.0)
    merged = RotatedSum(ROT_SHAPES, rotated=rotation is not None)
    merged.add(m2, 3.0)
    merged.merge(waiting)  # both sides have one waiting
    merged.add(m3, 0.5)
    np.testing.assert_allclose(merged.unrotated(rotation).total, want.total, rtol=0, atol=1e-9)


def test_rotated_sum_bytes_round_trip_and_merge() -> None:
    a, b = RotatedSum(ROT_SHAPES, rotated=True), RotatedSum(ROT_SHAPES, rotated=True)
    a.add(_message(0, "quant8"), 2.0)
    b.add(_message(1, "quant8"), 3.0)
    restored = RotatedSum.from_bytes(ROT_SHAPES, rotated=True, blob=a.to_bytes())
    assert (restored.count, restored.weight) == (1, 2.0)
    np.testing.assert_array_equal(restored.total, a.total)
    np.testing.assert_array_equal(restored.lows, a.lows)
    restored.merge(b)
    assert (restored.count, restored.weight) == (2, 5.0)


def test_rotated_sum_refuses_mismatched_input() -> None:
    acc = RotatedSum(ROT_SHAPES, rotated=True)
    with pytest.raises(ValueError, match="rotated"):
        acc.add(_message(0, "float32"), 1.0)
    with pytest.raises(ValueError, match="weight"):
        acc.add(_message(0, "quant8"), 0.0)
    with pytest.raises(ValueError, match="does not fit"):
        RotatedSum.from_bytes(ROT_SHAPES, rotated=True, blob=acc.to_bytes()[:-8])
    with pytest.raises(ValueError, match="different layouts"):
        acc.merge(RotatedSum(ROT_SHAPES, rotated=False))
    with pytest.raises(ValueError, match="rotation seed"):
        acc.unrotated(None)


def test_rotated_sum_clip_scale_shrinks_the_update_not_its_weight() -> None:
    """A clipped update (validation's scale) still counts with its full FedAvg weight in the mean."""
    a, b = _message(0, "quant8"), _message(1, "quant8")
    acc = RotatedSum(ROT_SHAPES, rotated=True)
    acc.add(a, 32.0, 0.25)
    acc.add(b, 8.0)
    got = acc.unrotated(9)
    assert got.weight == 40.0
    want = (
        32.0 * 0.25 * np.concatenate([t.ravel() for t in _decode64(a)])
        + 8.0 * np.concatenate([t.ravel() for t in _decode64(b)])
    ) / 40.0
    np.testing.assert_allclose(got.total / got.weight, want, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="clip scale"):
        acc.add(a, 1.0, 1.5)
