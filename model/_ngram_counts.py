"""Vectorized counting, table building and top-k helpers for ``model.ngram``.

Split out of ``model/ngram.py`` only to keep each file short; see that module's docstring
for the model (Kneser & Ney 1995; Chen & Goodman 1998). Everything here is numpy over int64
mixed-radix n-gram keys (oldest id most significant), so the work is a handful of
``np.unique``/``reduceat``/scatter passes instead of per-token Python.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# KenLM's --discount_fallback default, used when Chen & Goodman's estimate is undefined.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclass(frozen=True)
class OrderTable:
    """One order's k-grams, sorted by key so each context's k-grams are contiguous."""

    words: IntArray  # last id of each k-gram
    adj: FloatArray  # (c - D(c)) / c(context): the discounted direct term
    ctx_keys: IntArray  # sorted distinct context keys (k-1 ids)
    ctx_start: IntArray  # k-gram slice [start, end) of each context
    ctx_end: IntArray
    ctx_gamma: FloatArray  # backoff weight gamma(context)


def encode(tokens: IntArray, vocab_size: int) -> IntArray:
    """Mixed-radix int64 key of each row; all zeros when there are no columns."""
    key = np.zeros(tokens.shape[0], dtype=np.int64)
    for j in range(tokens.shape[1]):
        key = key * vocab_size + tokens[:, j]
    return key


def count_ngrams(ctx: IntArray, targets: IntArray, vocab_size: int) -> tuple[list[IntArray], list[IntArray]]:
    """Sorted k-gram keys and counts for k = 1..order (raw at the top, continuation below).

    The continuation count of a (k-1)-gram is the number of distinct k-gram types ending in
    it, i.e. N1+(. w_2..w_k): every lower-order occurrence is the suffix of a top-order
    one because every position has a full bos-padded history.
    """
    top = encode(np.concatenate([ctx, targets[:, None]], axis=1), vocab_size)
    k_keys, k_counts = np.unique(top, return_counts=True)
    keys: list[IntArray] = []
    counts: list[IntArray] = []
    for k in range(ctx.shape[1] + 1, 0, -1):
        keys.insert(0, k_keys.astype(np.int64))
        counts.insert(0, k_counts.astype(np.int64))
        k_keys, k_counts = np.unique(k_keys % vocab_size ** (k - 1), return_counts=True)
    return keys, counts


def estimate_discounts(counts: IntArray, order: int) -> tuple[float, float, float]:
    """Chen & Goodman (1998) D1, D2, D3+ from count-of-counts n1..n4.

    Y = n1/(n1+2n2), D_r = r - (r+1) Y n_{r+1}/n_r. If some n_r is 0 or some D_r is not
    in (0, r], fall back to (0.5, 1.0, 1.5) for this order, as KenLM does: D_r > 0 keeps
    every seen context's backoff weight positive, so no word ever gets zero probability.
    """
    n = [int(np.count_nonzero(counts == r)) for r in (1, 2, 3, 4)]
    if min(n) > 0:
        y = n[0] / (n[0] + 2 * n[1])
        d = tuple(r - (r + 1) * y * n[r] / n[r - 1] for r in (1, 2, 3))
        if all(0.0 < d[r - 1] <= r for r in (1, 2, 3)):
            return d[0], d[1], d[2]
    logger.warning(
        "order %d: count-of-counts n1..n4=%s give no valid modified-KN discounts; using %s",
        order,
        n,
        FALLBACK_DISCOUNTS,
    )
    return FALLBACK_DISCOUNTS


def build_table(keys: IntArray, counts: IntArray, discounts: FloatArray, vocab_size: int) -> OrderTable:
    """Precompute the direct terms and backoff weights gamma of one order."""
    disc = np.where(counts == 1, discounts[0], np.where(counts == 2, discounts[1], discounts[2]))
    ctx_keys, ctx_start = np.unique(keys // vocab_size, return_index=True)
    ctx_end = np.append(ctx_start[1:], keys.shape[0]).astype(np.int64)
    if keys.shape[0]:
        total = np.add.reduceat(counts.astype(np.float64), ctx_start)
        gamma = np.add.reduceat(disc, ctx_start) / total
    else:
        total = gamma = np.zeros(0)
    adj = (counts - disc) / np.repeat(total, ctx_end - ctx_start)
    return OrderTable(
        words=keys % vocab_size,
        adj=adj.astype(np.float64),
        ctx_keys=ctx_keys.astype(np.int64),
        ctx_start=ctx_start.astype(np.int64),
        ctx_end=ctx_end,
        ctx_gamma=gamma.astype(np.float64),
    )


def positions(
    examples: Iterable[npt.ArrayLike],
    *,
    order: int,
    vocab_size: int,
    pad_id: int,
    bos_id: int,
    eos_id: int,
) -> tuple[IntArray, IntArray]:
    """(contexts (M, order-1), targets (M,)) for every word of every example.

    Trailing pad ids are stripped (rows of a padded batch may be passed as-is); any other
    pad/bos/eos, an id outside [0, vocab_size) or a non-integer array raises ValueError.
    """
    arrays: list[IntArray] = []
    for i, ex in enumerate(examples):
        arr = np.asarray(ex)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"example {i} must be a 1-D int array, got {arr.dtype} {arr.shape}")
        arrays.append(arr.astype(np.int64, copy=False))
    raw_len = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    raw = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    example_of = np.repeat(np.arange(len(arrays)), raw_len)
    # Strip trailing pad: keep position j iff a non-pad id occurs at or after j in its example.
    non_pad_upto = np.concatenate([[0], np.cumsum(raw != pad_id)])
    ends = np.cumsum(raw_len)
    keep = non_pad_upto[ends[example_of]] > non_pad_upto[np.arange(raw.shape[0])]
    targets, example_of = raw[keep], example_of[keep]
    bad = (targets < 0) | (targets >= vocab_size) | np.isin(targets, [pad_id, bos_id, eos_id])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"example {int(example_of[i])} has id {int(targets[i])}, which is pad/bos/eos or "
            f"outside [0, {vocab_size}) and can never be a target"
        )
    h = order - 1
    lengths = np.bincount(example_of, minlength=len(arrays)).astype(np.int64)
    # Lay examples out as bos*h + words, back to back: windows never cross examples.
    shift = np.repeat(np.arange(1, len(arrays) + 1) * h, lengths)
    target_pos = np.arange(targets.shape[0]) + shift
    seq = np.full(targets.shape[0] + h * len(arrays), bos_id, dtype=np.int64)
    seq[target_pos] = targets
    ctx = seq[target_pos[:, None] - h + np.arange(h)]
    return ctx.reshape(targets.shape[0], h), targets


def top_k_rows(scores: FloatArray, k: int) -> IntArray:
    """Per row, the ids of the k largest scores, best first; ties go to the lowest id.

    k argmax passes (argmax returns the first maximum, hence lowest-id tie-breaking): for
    the small k a keyboard shows this is several times faster than np.partition and needs
    no tie fix-up. Overwrites the chosen entries of ``scores`` with -inf.
    """
    rows = np.arange(scores.shape[0])
    top = np.empty((scores.shape[0], k), dtype=np.int64)
    for j in range(k):
        top[:, j] = np.argmax(scores, axis=1)
        scores[rows, top[:, j]] = -np.inf
    return top
