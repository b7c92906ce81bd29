from __future__ import annotations

import numpy as np
import pytest

from secagg import client
from secagg.errors import SecAggError
from secagg.messages import RoundParams
from secagg.ring import RingSpec, decode_sum, encode
from secagg.simulate import Dropouts, run_round

LENGTH = 257


def _inputs(n: int, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i: rng.integers(0, 1 << 16, LENGTH).astype(np.uint32) for i in range(n)}


def _sum(inputs: dict[int, np.ndarray], ids: set[int] | range) -> np.ndarray:
    return np.sum([inputs[i] for i in ids], axis=0, dtype=np.uint64).astype(np.uint32)


def test_run_round_equals_exact_sum_of_quantized_updates() -> None:
    spec = RingSpec(bits=16, clip=0.5)
    rng = np.random.default_rng(3)
    floats = [rng.uniform(-0.5, 0.5, LENGTH) for _ in range(12)]
    levels = {i: encode(x, spec, rng) for i, x in enumerate(floats)}
    params = RoundParams(round=1, round_seed=11, n=12, length=LENGTH, threshold=6)
    total = run_round(params, levels)
    assert np.array_equal(total, _sum(levels, range(12)))
    np.testing.assert_allclose(decode_sum(total, 12, spec), np.sum(floats, axis=0), atol=12 * 1.0 / spec.top)


def test_run_round_sparse_graph_exact_sum() -> None:
    inputs = _inputs(40)
    params = RoundParams(round=2, round_seed=5, n=40, length=LENGTH, threshold=20, degree=10)
    assert params.k == 10 and params.t_share == 6
    assert np.array_equal(run_round(params, inputs), _sum(inputs, range(40)))


def test_run_round_30_percent_drop_after_masked_input_recovered() -> None:
    inputs = _inputs(30, seed=1)
    params = RoundParams(round=3, round_seed=7, n=30, length=LENGTH, threshold=15)
    gone = frozenset(np.random.default_rng(4).choice(30, 9, replace=False).tolist())
    total = run_round(params, inputs, Dropouts(before_unmask=gone))
    assert np.array_equal(total, _sum(inputs, range(30)))  # their inputs arrived, so they count


def test_run_round_30_percent_drop_before_masked_input_recovered() -> None:
    inputs = _inputs(30, seed=2)
    params = RoundParams(round=4, round_seed=8, n=30, length=LENGTH, threshold=15)
    gone = frozenset(np.random.default_rng(5).choice(30, 9, replace=False).tolist())
    total = run_round(params, inputs, Dropouts(before_input=gone))
    assert np.array_equal(total, _sum(inputs, set(range(30)) - gone))


def test_run_round_drops_in_every_phase_recovered() -> None:
    inputs = _inputs(30, seed=3)
    params = RoundParams(round=5, round_seed=9, n=30, length=LENGTH, threshold=12)
    drops = Dropouts(before_share=frozenset({0, 1}), before_input=frozenset({2, 3, 4}), before_unmask=frozenset({5, 6}))
    total = run_round(params, inputs, drops)
    assert np.array_equal(total, _sum(inputs, set(range(7, 30)) | {5, 6}))


def test_run_round_fewer_than_threshold_survivors_refused() -> None:
    inputs = _inputs(10, seed=4)
    params = RoundParams(round=6, round_seed=1, n=10, length=LENGTH, threshold=6)
    with pytest.raises(SecAggError) as err:
        run_round(params, inputs, Dropouts(before_input=frozenset(range(5))))
    assert err.value.reason == "below_threshold"


def test_run_round_too_few_unmask_answers_refused() -> None:
    inputs = _inputs(10, seed=5)
    params = RoundParams(round=7, round_seed=1, n=10, length=LENGTH, threshold=6)
    with pytest.raises(SecAggError) as err:
        run_round(params, inputs, Dropouts(before_unmask=frozenset(range(5))))
    assert err.value.reason == "below_threshold"


def test_run_round_device_cost_grows_with_log_n() -> None:
    # SecAgg+: count the pairwise keys (share ciphertexts sent = masks added) of each device at n = 100 and 500.
    per_device = {}
    for n in (100, 500):
        params = RoundParams(round=1, round_seed=n, n=n, length=1, threshold=n // 2)
        states, adverts = zip(*(client.advertise(params, i) for i in range(n)), strict=True)
        sent = {len(client.share_keys(params, states[i], adverts)[1]) for i in (0, n // 2, n - 1)}
        per_device[n] = sent
    assert per_device == {100: {28}, 500: {36}}
