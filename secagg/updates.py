"""A weighted model delta <-> one vector of ring elements, and the ring sum -> the weighted mean delta.

What a device feeds to ``client.masked_input`` and what the server makes of
``server.unmask_sum``. Secure rounds weight devices like plain ones (tokens),
by masking the pair ``[w, w * delta]`` as Flower's SecAgg+ does: the server
opens ``sum w`` and ``sum w * delta`` and divides.

The device:

1. clips its whole delta to L2 norm ``spec.clip`` (McMahan et al. 2018 bound
   each device's influence the same way; the contract's ``clip_by_global_norm``);
2. puts its weight on the grid: ``level_w = round(w / max_weight * top)``, at
   least 1 (``w`` must lie in (0, max_weight], as a plain upload's must), and
   ``a = level_w / top`` in (0, 1];
3. scales the clipped delta by ``a`` (so ``||a delta|| <= a clip <= clip``: every
   coordinate stays on the grid [-clip, clip], no extra ring headroom needed)
   and quantizes it stochastically (``ring.encode``, unbiased);
4. sends ``[level_w, levels of a * delta]``, ``length + 1`` ring elements.

The weight levels add up exactly (integers), so the server's denominator
``sum a_i`` is exact and the numerator is an unbiased estimate of
``sum a_i delta_i``: the result is the ``a``-weighted mean, with ``a_i`` the
token weight rounded to 1 / top of ``max_weight`` (1/65535 at 16 bits). Scaling
by the rounded weight rather than the true one is what keeps numerator and
denominator consistent; quantizing the weight stochastically instead would
make the ratio biased. No rotation: at 16 bits the grid step is 2 clip / 65535,
so the quantization error of a whole update is at most ``clip * sqrt(m) / 32768``
in L2 (about 3.4% of clip for the small model's 1.27M coordinates), unbiased.

Before decoding, ``secagg.bounds.check_sum`` refuses a sum that no devices with
in-range inputs could have produced.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from secagg.bounds import check_sum
from secagg.errors import SecAggError
from secagg.ring import RingSpec, decode_sum, encode

WEIGHT_INDEX = 0  # the ring vector is [weight level, delta levels...]


def flat_length(shapes: Sequence[tuple[int, ...]]) -> int:
    """Coordinates of all tensors together."""
    return sum(math.prod(s) for s in shapes)


def ring_length(shapes: Sequence[tuple[int, ...]]) -> int:
    """Ring elements a device masks: the weight, then every coordinate."""
    return flat_length(shapes) + 1


def weight_level(weight: float, spec: RingSpec) -> int:
    """``w`` on the grid: ``round(w / max_weight * top)`` in [1, top]; SecAggError outside (0, max_weight]."""
    if not (math.isfinite(weight) and 0 < weight <= spec.max_weight):
        raise SecAggError("bad_message", f"weight {weight!r} outside (0, {spec.max_weight}]")
    return max(1, round(weight / spec.max_weight * spec.top))


def delta_to_ring(deltas: Sequence[np.ndarray], weight: float, spec: RingSpec, rng: np.random.Generator) -> np.ndarray:
    """``[level_w, Q(a * clip(delta))]``: ``(m + 1,) uint32`` (steps 1-4 above)."""
    flat = np.concatenate([np.asarray(d, dtype=np.float64).ravel() for d in deltas])  # (m,)
    if not np.all(np.isfinite(flat)):
        raise SecAggError("bad_message", "the update has non-finite values")
    norm = float(np.linalg.norm(flat))
    if norm > spec.clip:
        flat *= spec.clip / norm
    level = weight_level(weight, spec)
    scaled = np.clip(flat * (level / spec.top), -spec.clip, spec.clip)  # (m,), ||.|| <= a clip
    return np.concatenate([np.array([level], np.uint32), encode(scaled, spec, rng)])  # (m + 1,)


@dataclasses.dataclass(frozen=True)
class WeightedMean:
    """What a secure round opens: the weighted mean delta and the total weight behind it."""

    tensors: list[np.ndarray]  # float32, the model's shapes
    weight: float  # sum of the (grid-rounded) token weights


def mean_from_ring(total: np.ndarray, n: int, shapes: Sequence[tuple[int, ...]], spec: RingSpec) -> WeightedMean:
    """The weighted mean of ``n`` devices' deltas from the ring sum of their vectors.

    SecAggError("out_of_range") if the sum could not come from ``n`` in-range
    inputs (``secagg.bounds.check_sum``): nothing is decoded then.
    """
    if n < 1:
        raise SecAggError("bad_config", f"need at least one device to average, got {n}")
    m = flat_length(shapes)
    vector = np.asarray(total)
    if vector.shape != (m + 1,):
        raise SecAggError("bad_message", f"sum has shape {vector.shape}, the model has {m} coordinates + 1 weight")
    check_sum(vector, n, spec)
    units = int(vector[WEIGHT_INDEX]) / spec.top  # sum of a_i, exact
    mean = decode_sum(vector[1:], n, spec) / units  # (m,)
    out, at = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(mean[at : at + size].reshape(shape).astype(np.float32))
        at += size
    return WeightedMean(out, units * spec.max_weight)
