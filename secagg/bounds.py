"""What the unmasked sum of n honest inputs can be: the server's only check on inputs it never sees.

A device's masked vector is uniformly random to the server, so a device that
sends levels off the grid (or past the ring) cannot be refused one by one; one
such input wrapped the ring and moved the mean of 5 devices from norm 0.14 to
4.1e5 (issue 14). The ring has headroom so that honest sums never wrap:
``n * top < 2**32`` (``RingSpec.check_devices``). Then every sum of ``n`` vectors
made by ``secagg.updates.delta_to_ring`` satisfies, with ``W = sum a_i`` read
from the weight coordinate and ``S`` the decoded sum of the scaled deltas:

- ``n <= level sum of the weights <= n * top`` (each level lies in [1, top]);
- ``|S_k| <= clip W + n step`` for every coordinate (``|a_i delta_ik| <= a_i clip``,
  and stochastic rounding moves each by less than one step);
- ``||S||_2 <= clip W + n step sqrt(m)`` (``||a_i delta_i|| <= a_i clip``, and each
  device's rounding error is below ``step sqrt(m)`` in L2).

A sum outside these is refused with SecAggError("out_of_range") and the round
is abandoned: nothing about it is committed, and the message (logged, shown to
the round's devices) names the bound, not the sum's values. What a malicious device can still
do: push the sum anywhere inside these bounds (Bonawitz et al. 2017's threat
model checks no input; refusing single inputs needs zero-knowledge range
proofs, e.g. Bell et al. 2023 "ACORN", out of scope). Since the committed mean
is ``S / W``, it stays within L2 norm ``clip + n step sqrt(m) / W`` — the ball
every honest mean lies in — but inside it one device can steer it, e.g. by
claiming up to ``n`` devices' worth of weight.
"""

from __future__ import annotations

import math

import numpy as np

from secagg.errors import SecAggError
from secagg.ring import RingSpec, decode_sum

_SLACK = 1e-9  # float64 rounding of the decoded sums


def check_sum(total: np.ndarray, n: int, spec: RingSpec) -> None:
    """SecAggError("out_of_range") unless ``total`` ``(m + 1,) uint32`` could be the sum of ``n`` honest vectors."""
    spec.check_devices(n)
    vector = np.asarray(total, dtype=np.uint32)
    level_sum = int(vector[0])
    if not n <= level_sum <= n * spec.top:
        raise SecAggError("out_of_range", f"the weights' level sum is outside [{n}, {n * spec.top}]")
    weight = level_sum / spec.top
    s = decode_sum(vector[1:], n, spec)  # (m,)
    coordinate_bound = (spec.clip * weight + n * spec.step) * (1 + _SLACK)
    worst = float(np.max(np.abs(s))) if s.size else 0.0
    if worst > coordinate_bound:
        raise SecAggError(
            "out_of_range", f"a coordinate of the sum is beyond the {coordinate_bound:.6g} that in-range inputs reach"
        )
    l2_bound = weight * mean_l2_bound(spec, n, weight, s.size) * (1 + _SLACK)
    norm = float(np.linalg.norm(s))
    if norm > l2_bound:
        raise SecAggError("out_of_range", f"the sum's L2 norm is beyond the {l2_bound:.6g} that in-range inputs reach")


def mean_l2_bound(spec: RingSpec, n: int, units: float, m: int) -> float:
    """The largest L2 norm of the weighted mean ``S / W`` of ``n`` in-range inputs: ``clip + n step sqrt(m) / W``.

    ``units`` is ``W = sum a_i`` (the weights' level sum / top), ``m`` the coordinate
    count. The second term is the rounding: each device moves each coordinate by
    less than a step whatever its weight, so small weights amplify it (``n / W``).
    """
    if n < 1 or not units > 0 or m < 0:
        raise SecAggError("bad_config", f"need n >= 1, W > 0, m >= 0; got {n}, {units}, {m}")
    return spec.clip + n * spec.step * math.sqrt(m) / units
