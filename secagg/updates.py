"""A model delta <-> one vector of ring elements, and the ring sum -> the mean delta.

What a device feeds to ``client.masked_input`` and what the server makes of
``server.unmask_sum``. The device clips its whole delta to L2 norm
``spec.clip`` (McMahan et al. 2018 bound each device's influence the same way;
the contract's ``clip_by_global_norm``); then every coordinate lies in
[-clip, clip] and ``ring.encode`` quantizes it stochastically on the shared
grid. No rotation: at 16 bits the grid step is 2 clip / 65535, so the
quantization error of a whole update is at most ``clip * sqrt(m) / 65535``
in L2 (about 1.7% of clip for the small model's 1.27M coordinates), and
unbiased. Secure rounds average devices uniformly: a token weight cannot be
applied after the fact to a sum the server cannot open.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from secagg.errors import SecAggError
from secagg.ring import RingSpec, decode_sum, encode


def flat_length(shapes: Sequence[tuple[int, ...]]) -> int:
    """Coordinates of all tensors together."""
    return sum(math.prod(s) for s in shapes)


def delta_to_ring(deltas: Sequence[np.ndarray], spec: RingSpec, rng: np.random.Generator) -> np.ndarray:
    """Clip the delta's global L2 norm to ``spec.clip``, flatten in weight order, quantize: ``(m,) uint32``."""
    flat = np.concatenate([np.asarray(d, dtype=np.float64).ravel() for d in deltas])  # (m,)
    if not np.all(np.isfinite(flat)):
        raise SecAggError("bad_message", "the update has non-finite values")
    norm = float(np.linalg.norm(flat))
    if norm > spec.clip:
        flat *= spec.clip / norm
    return encode(np.clip(flat, -spec.clip, spec.clip), spec, rng)


def mean_from_ring(total: np.ndarray, n: int, shapes: Sequence[tuple[int, ...]], spec: RingSpec) -> list[np.ndarray]:
    """The mean of ``n`` devices' deltas from their ring sum, as float32 tensors of ``shapes``."""
    if n < 1:
        raise SecAggError("bad_config", f"need at least one device to average, got {n}")
    m = flat_length(shapes)
    if np.asarray(total).shape != (m,):
        raise SecAggError("bad_message", f"sum has shape {np.asarray(total).shape}, the model has {m} coordinates")
    mean = decode_sum(total, n, spec) / n  # (m,)
    out, at = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(mean[at : at + size].reshape(shape).astype(np.float32))
        at += size
    return out
