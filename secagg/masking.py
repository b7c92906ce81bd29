"""Masks: what a device adds to its input and what the server takes off the sum.

A device i uploads ``y_i = x_i + PRG(b_i) + sum_{j in N(i)} sign(i, j) PRG(s_ij)``
in Z_{2^32} (Bonawitz et al. 2017, §4, round 2), where ``b_i`` is its own
self-mask seed, ``s_ij`` the seed agreed with neighbour j, and
``sign(i, j) = +1 if i < j else -1``: over all devices of the round every
pairwise mask appears once with each sign and cancels in the sum. The
self-mask hides y_i even if j's pairwise seed is later revealed because j
dropped. numpy's uint32 arithmetic wraps, which is exactly addition mod 2^32.
Each function expands its masks into one reused buffer (``prg.MaskExpander``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from secagg.prg import MaskExpander


def sign(i: int, j: int) -> int:
    """+1 if device i adds the mask it shares with j, -1 if it subtracts it."""
    return 1 if i < j else -1


def _apply(total: np.ndarray, mask: np.ndarray, positive: bool) -> None:
    if positive:
        np.add(total, mask, out=total)
    else:
        np.subtract(total, mask, out=total)


def mask_input(x: np.ndarray, me: int, self_seed: bytes, pair_seeds: Mapping[int, bytes]) -> np.ndarray:
    """``(m,) uint32 -> (m,) uint32``: x plus the self mask plus the signed pairwise masks, mod 2^32."""
    y = np.array(x, dtype=np.uint32).ravel()  # (m,), a copy
    expand = MaskExpander(y.size)
    _apply(y, expand(self_seed), True)
    for j, seed in pair_seeds.items():
        _apply(y, expand(seed), sign(me, j) > 0)
    return y


def remove_self_masks(total: np.ndarray, self_seeds: Iterable[bytes]) -> None:
    """Subtract each surviving device's self mask from the running sum ``(m,) uint32`` in place."""
    expand = MaskExpander(total.size)
    for seed in self_seeds:
        _apply(total, expand(seed), False)


def remove_pairwise_masks(total: np.ndarray, pairs: Iterable[tuple[int, int, bytes]]) -> None:
    """Take off, in place, each mask a survivor added for a neighbour that dropped before its input.

    ``pairs``: ``(survivor, dropped, seed)``; the survivor added ``sign(survivor, dropped) PRG(seed)``.
    """
    expand = MaskExpander(total.size)
    for survivor, dropped, seed in pairs:
        _apply(total, expand(seed), sign(survivor, dropped) < 0)
