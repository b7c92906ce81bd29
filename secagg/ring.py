"""Quantized updates in the ring Z_{2^32}: what a device masks and what the server sums.

Masks only cancel in a finite group, so a float update is first mapped to
integers (Bonawitz et al. 2017, §3 inputs are vectors in Z_R; Bonawitz et al.
2019 for the production use). The mapping is the same for every device of a
round, so the sum of the integers decodes to the sum of the updates:

1. the caller clips the update to L2 norm ``clip`` and applies the round's
   shared randomized Hadamard rotation (``wire.codec``; same seed for all
   devices of the round, else the rotated vectors could not be added) — after
   which every coordinate lies in [-clip, clip];
2. each coordinate is stochastically rounded to one of ``2**bits`` levels on the
   fixed grid [-clip, clip] (unbiased, Suresh et al. 2017) — a level is an
   integer in [0, 2**bits);
3. the ring sum of n devices' levels is exact while ``n * (2**bits - 1) < 2**32``,
   checked by ``RingSpec.check_devices`` before a round starts.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from secagg.errors import SecAggError

RING_BITS = 32


@dataclasses.dataclass(frozen=True)
class RingSpec:
    """The shared fixed-point grid: ``bits`` per coordinate over [-clip, clip]; weights on (0, max_weight].

    ``max_weight`` is the largest FedAvg weight a device may claim (a plain
    round's bound, ``coordinator.records.TaskRow.max_weight``); a device's
    weight travels as ``weight / max_weight`` on the same ``2**bits`` levels
    (``secagg.updates``).
    """

    bits: int = 16
    clip: float = 1.0
    max_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 24:
            raise ValueError(f"RingSpec.bits must be between 1 and 24, got {self.bits!r}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"RingSpec.clip must be a positive finite number, got {self.clip!r}")
        if not (math.isfinite(self.max_weight) and self.max_weight > 0):
            raise ValueError(f"RingSpec.max_weight must be a positive finite number, got {self.max_weight!r}")

    @property
    def step(self) -> float:
        """The grid's spacing, ``2 clip / top``."""
        return 2 * self.clip / self.top

    @property
    def top(self) -> int:
        """The largest level, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    def max_devices(self) -> int:
        """The most devices whose levels can be summed in Z_{2^32} without wrapping."""
        return ((1 << RING_BITS) - 1) // self.top

    def check_devices(self, n: int) -> None:
        """SecAggError("bad_config") if ``n`` devices could overflow the ring."""
        if n > self.max_devices():
            raise SecAggError(
                "bad_config", f"{n} devices of {self.bits} bits overflow Z_2^32 (at most {self.max_devices()})"
            )


def encode(x: np.ndarray, spec: RingSpec, rng: np.random.Generator) -> np.ndarray:
    """Float coordinates in [-clip, clip] -> uint32 levels in [0, 2**bits), stochastic rounding.

    ``(m,) float -> (m,) uint32``. Values outside the grid (not clipped by the
    caller) are refused, not silently saturated: saturation would bias the sum.
    """
    flat = np.asarray(x, dtype=np.float64).ravel()  # (m,)
    if not np.all(np.isfinite(flat)):
        raise SecAggError("bad_message", "cannot encode non-finite values")
    if flat.size and float(np.max(np.abs(flat))) > spec.clip * (1 + 1e-9):
        raise SecAggError(
            "bad_message", f"value {float(np.max(np.abs(flat)))!r} outside the grid [-{spec.clip}, {spec.clip}]"
        )
    scaled = np.clip((flat + spec.clip) / (2 * spec.clip) * spec.top, 0.0, float(spec.top))  # (m,) in [0, top]
    floor = np.floor(scaled)
    up = rng.random(flat.size) < (scaled - floor)
    return np.minimum(floor + up, spec.top).astype(np.uint32)


def decode_sum(total: np.ndarray, n: int, spec: RingSpec) -> np.ndarray:
    """The float64 sum of ``n`` devices' values from the ring sum of their levels, ``(m,) -> (m,)``.

    Each level ``l`` stands for ``-clip + l * 2 clip / top``, so a sum of n levels
    ``L`` stands for ``-n clip + L * 2 clip / top``.
    """
    spec.check_devices(n)
    levels = np.asarray(total, dtype=np.uint32).astype(np.float64)  # (m,)
    return -n * spec.clip + levels * (2 * spec.clip / spec.top)
