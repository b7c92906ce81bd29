"""Masks: what a device adds to its input and what the server takes off the sum.

A device i uploads ``y_i = x_i + PRG(b_i) + sum_{j in N(i)} sign(i, j) PRG(s_ij)``
in Z_{2^32} (Bonawitz et al. 2017, §4, round 2), where ``b_i`` is its own
self-mask seed, ``s_ij`` the seed agreed with neighbour j, and
``sign(i, j) = +1 if i < j else -1``: over all devices of the round every
pairwise mask appears once with each sign and cancels in the sum. The
self-mask hides y_i even if j's pairwise seed is later revealed because j
dropped. numpy's uint32 arithmetic wraps, which is exactly addition mod 2^32.
Each function adds all its masks in one cache-blocked pass (``prg.add_masks``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from secagg.prg import add_masks


def sign(i: int, j: int) -> int:
    """+1 if device i adds the mask it shares with j, -1 if it subtracts it."""
    return 1 if i < j else -1


def mask_input(x: np.ndarray, me: int, self_seed: bytes, pair_seeds: Mapping[int, bytes]) -> np.ndarray:
    """``(m,) uint32 -> (m,) uint32``: x plus the self mask plus the signed pairwise masks, mod 2^32."""
    y = np.array(x, dtype=np.uint32).ravel()  # (m,), a copy
    plus = [self_seed] + [seed for j, seed in pair_seeds.items() if sign(me, j) > 0]
    add_masks(y, plus, [seed for j, seed in pair_seeds.items() if sign(me, j) < 0])
    return y


def remove_masks(
    total: np.ndarray, self_seeds: Iterable[bytes], pairs: Iterable[tuple[int, int, bytes]], *, threads: int = 1
) -> None:
    """Take off the running sum ``(m,) uint32``, in place, every self mask and each mask of a dropped neighbour.

    ``self_seeds``: the surviving devices' self-mask seeds (each added its ``PRG(b)``).
    ``pairs``: ``(survivor, dropped, seed)``; the survivor added ``sign(survivor, dropped) PRG(seed)``.
    One pass over ``total`` for all of them (``prg.add_masks``, ``threads`` threads).
    """
    minus = list(self_seeds)
    plus: list[bytes] = []
    for survivor, dropped, seed in pairs:
        (minus if sign(survivor, dropped) > 0 else plus).append(seed)
    add_masks(total, plus, minus, threads=threads)


def remove_self_masks(total: np.ndarray, self_seeds: Iterable[bytes]) -> None:
    """Subtract each surviving device's self mask from the running sum ``(m,) uint32`` in place."""
    remove_masks(total, self_seeds, ())


def remove_pairwise_masks(total: np.ndarray, pairs: Iterable[tuple[int, int, bytes]]) -> None:
    """Take off, in place, each mask a survivor added for a neighbour that dropped before its input.

    ``pairs``: ``(survivor, dropped, seed)``; the survivor added ``sign(survivor, dropped) PRG(seed)``.
    """
    remove_masks(total, (), pairs)
