"""Turning a user's typed messages into fixed-size next-word training rows.

Every message is one example of word ids. The model reads ``[BOS] w1 .. w(n-1)``
and predicts ``w1 .. wn``, so the first word of a message is predicted from
the begin marker alone, as a keyboard suggests words before anything is typed.
Messages longer than the sequence length continue on further rows; rows are
right-padded, and padding never counts in the loss or the metrics. Fixed
shapes matter beyond speed: the on-device TFLite training graph needs them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def make_sequences(
    examples: Sequence[np.ndarray], seq_len: int, *, bos_id: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (inputs, targets), each int32 of shape (rows, seq_len).

    An empty message yields no row. The work is vectorized: preparing a whole
    corpus of a million words takes well under a second.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    lengths = np.fromiter((len(e) for e in examples), dtype=np.int64, count=len(examples))  # (E,)
    rows_per_example = -(-lengths // seq_len)  # ceil division, (E,)
    num_rows = int(rows_per_example.sum())
    inputs = np.full((num_rows, seq_len), pad_id, dtype=np.int32)
    targets = np.full((num_rows, seq_len), pad_id, dtype=np.int32)
    if num_rows == 0:
        return inputs, targets
    nonempty = [np.asarray(e, dtype=np.int32) for e in examples if len(e)]
    flat_targets = np.concatenate(nonempty)  # (N,)
    flat_inputs = np.concatenate([np.concatenate(([bos_id], e[:-1])).astype(np.int32) for e in nonempty])  # (N,)
    ex_lengths = lengths[lengths > 0]
    ex_rows = rows_per_example[lengths > 0]
    first_row = np.concatenate(([0], np.cumsum(ex_rows)[:-1]))  # (E',)
    starts = np.concatenate(([0], np.cumsum(ex_lengths)[:-1]))  # (E',)
    position = np.arange(len(flat_targets)) - np.repeat(starts, ex_lengths)  # (N,) index within message
    row = np.repeat(first_row, ex_lengths) + position // seq_len
    col = position % seq_len
    inputs[row, col] = flat_inputs
    targets[row, col] = flat_targets
    return inputs, targets


def length_buckets(targets: np.ndarray, widths: Sequence[int], *, pad_id: int) -> list[tuple[np.ndarray, int]]:
    """Rows grouped by length: ``(row indices, width)`` for each width that holds rows, narrowest first.

    A row goes to the narrowest width at least its length (the position of its last non-padding target plus
    one); the rows are right-padded, so cutting a row to that width drops padding only and every loss and
    metric is unchanged. Batches of one width then skip the padding a fixed ``seq_len`` would compute: short
    typed messages (chat: about 9 words; half of a 20-word row is padding) train ~2x faster. This is
    bucketing by length, as in sequence-to-sequence training (Sutskever et al. 2014; Khomenko et al. 2016).
    The last width must be ``seq_len`` (rows' full width).

    Example: targets rows of lengths 3, 0, 20, 5 (0: all padding) with widths (4, 10, 20) ->
    [([0, 1], 4), ([3], 10), ([2], 20)].
    """
    seq_len = targets.shape[1]
    if not widths_increase(widths) or widths[-1] != seq_len:
        raise ValueError(f"widths must increase from >= 1 to the rows' width {seq_len}, got {tuple(widths)}")
    nonpad = targets != pad_id  # (R, T)
    lengths = np.where(nonpad.any(axis=1), seq_len - np.argmax(nonpad[:, ::-1], axis=1), 0)  # (R,)
    bucket = np.searchsorted(np.asarray(widths), lengths, side="left")  # (R,) first width >= length
    members = [(np.flatnonzero(bucket == b), int(w)) for b, w in enumerate(widths)]
    return [(rows, width) for rows, width in members if len(rows)]


def widths_increase(widths: Sequence[int]) -> bool:
    """Whether ``widths`` is a non-empty, strictly increasing sequence of positive widths."""
    return bool(widths) and list(widths) == sorted(set(widths)) and widths[0] >= 1
