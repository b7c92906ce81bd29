from __future__ import annotations

import numpy as np

from secagg.masking import mask_input, remove_pairwise_masks, remove_self_masks, sign

M = 1 << 14


def _seed(rng: np.random.Generator) -> bytes:
    return rng.bytes(32)


def _gaussian_update_levels(rng: np.random.Generator) -> np.ndarray:
    # what a quantized update looks like: 16-bit levels bunched around the middle of the grid
    return np.clip(rng.normal(1 << 15, 2000, M), 0, (1 << 16) - 1).astype(np.uint32)


def test_masks_cancel_in_the_sum() -> None:
    rng = np.random.default_rng(0)
    xs = [_gaussian_update_levels(rng) for _ in range(3)]
    selfs = [_seed(rng) for _ in range(3)]
    pair = {(0, 1): _seed(rng), (0, 2): _seed(rng), (1, 2): _seed(rng)}
    ys = [mask_input(xs[i], i, selfs[i], {j: pair[min(i, j), max(i, j)] for j in range(3) if j != i}) for i in range(3)]
    total = np.sum(ys, axis=0, dtype=np.uint64).astype(np.uint32)
    remove_self_masks(total, selfs)
    assert np.array_equal(total, np.sum(xs, axis=0, dtype=np.uint64).astype(np.uint32))


def test_remove_pairwise_masks_undoes_a_dropped_neighbour() -> None:
    rng = np.random.default_rng(1)
    x, own, shared = _gaussian_update_levels(rng), _seed(rng), _seed(rng)
    for me, dropped in ((2, 5), (5, 2)):
        y = mask_input(x, me, own, {dropped: shared})
        remove_self_masks(y, [own])
        remove_pairwise_masks(y, [(me, dropped, shared)])
        assert np.array_equal(y, x)
    assert sign(1, 2) == 1 and sign(2, 1) == -1


# Upper quantiles of the chi-square distribution with 255 degrees of freedom (scipy.stats.chi2.ppf):
CHI2_255_P999 = 330.52  # a uniform source exceeds it with probability 1e-3
CHI2_255_1E12 = 447.51  # ... with probability 1e-12


def chi_square(counts: np.ndarray) -> float:
    """Pearson's statistic of observed counts against equal expected counts."""
    expected = counts.sum() / counts.size
    return float(np.sum((counts - expected) ** 2) / expected)


def _byte_stat(v: np.ndarray) -> float:
    return chi_square(np.bincount(v.view(np.uint8), minlength=256))


def _bucket_stat(v: np.ndarray) -> float:
    return chi_square(np.bincount((v >> np.uint32(24)).astype(np.int64), minlength=256))  # top 8 bits: 256 buckets


def test_masked_upload_indistinguishable_from_uniform() -> None:
    rng = np.random.default_rng(2)
    x = _gaussian_update_levels(rng)
    y = mask_input(x, 0, _seed(rng), {j: _seed(rng) for j in range(1, 9)})
    assert _byte_stat(y) < CHI2_255_P999 and _bucket_stat(y) < CHI2_255_P999
    # control: the same test tells the unmasked update apart at once
    assert _byte_stat(x) > CHI2_255_1E12 and _bucket_stat(x) > CHI2_255_1E12
